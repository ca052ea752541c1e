"""Training: the parts a config builds (parts.py), THE loop (loop.py) and the programs it drives
(single_run.py, vectorized.py), with the loop's helpers: dispatch, preemption, profiling,
progress, early stopping and speed accounting. `train.train_and_evaluate` is the entry point."""
