"""Metric sums: (sum, count) accumulation, and the means taken from them on the host.

Steps return metric *sums* as (sum, count) pairs (`loss`, `accuracy`, ...) plus the example
`count`, already reduced across devices; means are taken only on the host, once the sums of a
whole window or split are in. That keeps padded evaluation batches and sharded batches exact.
"""
from typing import Iterable, Mapping

import jax
import numpy as np


def add_sums(total: dict | None, new: Mapping) -> dict:
  """Adds two trees of metric sums ((sum, count) pairs and plain counts), host or device."""
  if total is None:
    return dict(new)
  return jax.tree.map(lambda a, b: a + b, dict(total), dict(new))


def means(sums: Mapping) -> dict:
  """(sum, count) pairs → sum / count; plain values (the example count) → int."""
  out = {}
  for name, value in sums.items():
    if isinstance(value, (tuple, list)):
      total, count = (float(np.asarray(v, dtype=np.float64)) for v in value)
      out[name] = total / count if count else float('nan')
    else:
      out[name] = int(round(float(np.asarray(value))))
  return out


def sum_window(window: Iterable[Mapping]) -> dict:
  """Sums a list of per-step metric sums on the host, in float64 (one fetch per window)."""
  host = jax.device_get(list(window))
  total = None
  for sums in host:
    total = add_sums(total, jax.tree.map(lambda v: np.asarray(v, np.float64), sums))
  return total
