"""The run folder, `<out>/<name>/<run id>/`: what a run writes and reads back (config, meta.json, row files, run.log,
checkpoints, digests), its lock, and how runs are found, tagged and removed."""
