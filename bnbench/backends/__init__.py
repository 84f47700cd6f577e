"""Where a run's units train: one interface (dispatch), one module per place (local: this process; workers:
forked worker processes; ray: Ray tasks, on this machine or a cluster), and how a run and its processes stop
(stopping).

A unit is what one trainer trains at once: one trial, or a stacked group. A backend trains the units it is given
and hands back, in the calling thread and as they happen, each progress event and each finished epoch (the
trial's result and its serialized trainer state) to a `Receiver`: the runner, the run folder's only writer. A
backend that loses a unit's process raises `WorkerDied`. Every backend trains a unit with `train_unit`, so what a
trial computes never depends on where it ran.

Nothing is imported here, so that `stopping` stays light (`compare` never imports torch).
"""
