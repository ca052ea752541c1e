"""research: experiments as config files; Flax models and Optax optimizers trained with JAX.

The entry points are imported lazily, so that `import research.config` (or a config file) does
not pay for JAX, TFDS and Orbax until a run needs them.
"""
import importlib

_ENTRY_POINTS = {
    'train_and_evaluate': 'research.run.train',
    'load_run': 'research.api',
    'LoadedRun': 'research.api',
    'evaluate_workdir': 'research.api',
}
__all__ = list(_ENTRY_POINTS)


def __getattr__(name):
  if name in _ENTRY_POINTS:
    return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
  raise AttributeError(f"module 'research' has no attribute {name!r}")
