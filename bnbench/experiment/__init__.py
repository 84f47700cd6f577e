"""The experiment, before anything trains: the config (read safely, validated, overridden), its trials (variants x
seeds x sweep points), the data set and the seeded streams every trial draws from, and `bnbench init`'s scaffold."""
