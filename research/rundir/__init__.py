"""A run directory (workdir): its layout and readers (layout.py), the writer that owns it
(workdir.py), Orbax checkpoints (checkpoint.py), metric writers and the run's provenance."""
