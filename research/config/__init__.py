"""Configs, at the ground of the package: nothing here imports a model, a dataset or JAX.

  schema.py   every key and its one default (imports nothing from research)
  files.py    loading `path.py[:arg]` and applying `--config.a.b=V` overrides
  resolve.py  the shared keys (`base`), validation of the shared settings, resolution

Config files and the runner use this package as one API: `from research import config`.
"""
from research.config.files import REQUIRED_KEYS, apply_overrides, load, mnist1d_variant, parse_arg
from research.config.resolve import (
    DTYPES, PARALLEL_MODES, VECTORIZE_MODES, base, check_wandb, flat_diff, from_stored, is_agent,
    lookup, resolve, resolve_like, rl_base, to_json, validate, with_defaults)

__all__ = ['DTYPES', 'PARALLEL_MODES', 'REQUIRED_KEYS', 'VECTORIZE_MODES', 'apply_overrides',
           'base', 'check_wandb', 'flat_diff', 'from_stored', 'is_agent', 'load', 'lookup',
           'mnist1d_variant', 'parse_arg', 'resolve', 'resolve_like', 'rl_base', 'to_json',
           'validate', 'with_defaults']
