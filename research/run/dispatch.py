"""Several training steps per dispatch (`config.steps_per_dispatch` = k), the host side.

For small models a step is dominated by the fixed cost of launching it from Python; running k
steps in one compiled call (steps.train_steps: `lax.scan` over a stack of k batches) pays it once
per k steps. The loop then feeds [k, batch, ...] stacks and gets the k steps' metric sums back
stacked, which `per_step` turns back into one entry per step, so logging, the non-finite check and
the metric rows are the same as with k = 1. Measure before using it on CPU: XLA:CPU may pick
slower kernels inside a loop body (DESIGN.md measured a 3x slow-down for a small CNN).
"""
from typing import Any, Iterator

import jax
import numpy as np


def next_batches(iterator: Iterator[dict], k: int) -> dict:
  """The next batch (k = 1), or the next k batches stacked on a new leading axis."""
  if k == 1:
    return next(iterator)
  batches = [next(iterator) for _ in range(k)]
  return jax.tree.map(lambda *xs: np.stack(xs), *batches)


def per_step(host_window: list[Any], k: int) -> list[Any]:
  """A window of host metric sums, one entry per dispatch, as one entry per step."""
  if k == 1:
    return list(host_window)
  return [jax.tree.map(lambda x, i=i: x[i], sums) for sums in host_window for i in range(k)]
