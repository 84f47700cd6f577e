"""The run folder, `<out>/<name>/<run id>/`, as one object (`folder.RunFolder`, the one place that knows its files'
names): its config, meta.json (`meta`), row files (`schema`, `rows`), checkpoints (`checkpoint_files`,
`checkpoints`), digests, run.log (`log`), lock (`lock`), each trial's recorded state (`trial_state`), and how runs
are found (`search`), tagged (`tags`) and removed (`removal`). Nothing outside this package opens one of its files
or builds one of its paths."""
