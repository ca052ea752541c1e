"""Where a run's arrays live: placement on a device mesh or under pmap (placement.py), sharding
rules for parameters (sharding.py), and several processes in one run (multihost.py)."""
