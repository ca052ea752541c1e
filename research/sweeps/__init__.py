"""Sweeps: what an experiment file states (spec.py), its runs (grid.py), which of them to start
and how (plan.py), and running them (runner.py; group_child.py trains a vectorized group)."""
