"""Running an experiment: trials trained (where, the backends' business), stored, resumed, grown, stopped, and the
rounds of `--until-decided`."""
