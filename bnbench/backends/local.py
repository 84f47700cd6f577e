"""Units trained in this process, one after another (`--jobs 1`)."""

from bnbench.backends.dispatch import Job, Receiver, checkpoints, cpu_settings, train_unit
from bnbench.experiment.trials import Trial


class Local:
    def train(self, job: Job, units: list[list[Trial]], receiver: Receiver) -> None:
        data = job.data.to(job.device)
        with cpu_settings():
            for unit in units:
                start = checkpoints(job.run_dir, unit)
                for epoch in train_unit(unit, data, job.device, job.engine, start, receiver.progress):
                    for trial, result, state in epoch:
                        receiver.epoch_done(trial, result, state)
