"""How a trial trains, one module per idea (nothing is imported here, so `events` stays light):

events      what training reports: `Progress`, `EpochResult`, and how many batches an epoch has
epoch       the one epoch skeleton (log the loss a tick at a time, evaluate when due, stop on a non-finite loss,
            finish the epoch); an engine supplies only "train batches i..j"
eager       `Trainer`: one trial, a step at a time (the reference every other engine equals)
graph       `GraphTrainer`: eager's steps captured into CUDA graphs and replayed
stacked     `StackedTrainer`: K compatible trials as one batched model
fast_optim  the optimizer, and its step without torch's per-call wrappers
choose      which engine trains a run (and why not another), its units, and building their trainer
"""
