"""Training stages: thin wrappers around TRL trainers plus the run directory they write."""
