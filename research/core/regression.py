"""The regression task's pieces: standardized targets, and metrics in the data's own units.

Targets of any shape are flattened per example to [B, D] and standardized with the training
split's (mean, std) (`Scale`, fitted on the train split only by the data layer and recorded in the
run's dataset.json): the model predicts z = (y − mean) / std, and the loss is taken on z, so one
learning rate suits data in any units. The reported metrics undo that: an error e_z on z is
e_z · std in the data's units.

Metric (sum, count) pairs, each target value counted once and padding examples weighted 0:
  loss      the loss on standardized targets (what is differentiated), per example
  mse, mae  squared and absolute errors in data units, per target value
  _z, _z2   sums of z and z² per target value, from which the host takes the variance of the
            targets, so R² = 1 − SSE / SST is exact over a whole split (R² is the same in
            standardized and data units: both sums scale by std²)
`summarize` turns those into mse, rmse, mae and r2 and drops the helper sums.
"""
import dataclasses
import math
from typing import Callable

import jax.numpy as jnp

from research.core import metric_sums

_HELPERS = ('_z', '_z2')


@dataclasses.dataclass(frozen=True)
class Scale:
  """The training split's target mean and standard deviation (over all target values)."""
  mean: float = 0.0
  std: float = 1.0


def prepare(batch: dict, examples: jnp.ndarray, scale: Scale) -> tuple[jnp.ndarray, dict]:
  """(model inputs, targets): standardized targets [B, D], per-example weights [B]."""
  target = batch['target'].reshape((batch['target'].shape[0], -1)).astype(jnp.float32)
  z = (target - scale.mean) / scale.std
  return batch['input'], {'labels': z, 'weights': examples, 'examples': examples}


def loss_and_sums(loss_fn: Callable, outputs: jnp.ndarray, targets: dict,
                  scale: Scale) -> tuple[jnp.ndarray, dict]:
  """The weighted mean loss on standardized targets and the metric sums (module docstring)."""
  z, weights = targets['labels'], targets['weights'].astype(jnp.float32)
  outputs = outputs.reshape(z.shape).astype(jnp.float32)
  per_example = loss_fn(outputs, z)
  examples = weights.sum()
  per_value = jnp.broadcast_to(weights[:, None], z.shape)
  values = per_value.sum()
  error = (outputs - z) * scale.std
  sums = {'loss': ((per_example * weights).sum(), examples),
          'mse': ((jnp.square(error) * per_value).sum(), values),
          'mae': ((jnp.abs(error) * per_value).sum(), values),
          '_z': ((z * per_value).sum(), values),
          '_z2': ((jnp.square(z) * per_value).sum(), values),
          'count': targets['examples'].sum()}
  return (per_example * weights).sum() / jnp.maximum(examples, 1.0), sums


def summarize(sums: dict, scale: Scale) -> dict:
  """Host-side metrics: loss, mse, rmse, mae, r2 (None where the targets do not vary), count."""
  out = metric_sums.means(sums)
  mean_z, mean_z2 = (out.pop(name, None) for name in _HELPERS)
  if 'mse' in out:
    out['rmse'] = math.sqrt(out['mse']) if out['mse'] >= 0 else float('nan')
    variance = None if mean_z is None else mean_z2 - mean_z ** 2
    out['r2'] = (1.0 - out['mse'] / scale.std ** 2 / variance
                 if variance is not None and variance > 1e-12 else None)
  return out
