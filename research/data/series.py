"""Forecasting windows cut from a time series, and the training split's scale of its targets.

A series dataset stores one real value per time step (feature `value`, with its `time`) in three
TFDS splits that are consecutive stretches of time: train, then validation, then test (the
builders in research/data/series_builders.py cut them). Each split is cut into its own windows
here, so no window straddles a boundary and nothing of a later split leaks into an earlier one:

    window k of a split:  input  = values[s : s + context_length]          (standardized)
                          target = values[s + context_length : s + context_length + horizon]
                          with s = k * stride, while s + context_length + horizon <= len(split)

A split of n values has (n - context_length - horizon) // stride + 1 windows. With stride 1 the
test windows are a rolling-origin evaluation: one forecast origin per test step that leaves a full
horizon after it. Inputs are standardized with the mean and standard deviation of the TRAIN
split's values only (`fit_scale`), and the same scale is the run's `target_scale`, with which the
regression task standardizes the targets (core/regression.py) and reports errors in the series'
own units.
"""
import numpy as np

from research import errors
from research.config import schema
from research.data import encoding as encoding_lib

ROLES = ('train', 'validation', 'test')


def fit_scale(values: np.ndarray) -> tuple[float, float]:
  """(mean, standard deviation) of `values` (all of them, flattened); std 1 where it is 0."""
  values = np.asarray(values, np.float64).ravel()
  std = float(values.std())
  return float(values.mean()), std if std > 0 else 1.0


def read_split(name: str, builder, split: str, feature: str = 'value') -> np.ndarray:
  """The values of one TFDS split in time order, float64; UserError on a NaN or infinity."""
  source = builder.as_data_source(split=split)
  records = source.__getitems__(list(range(len(source))))
  times = np.asarray([r['time'] for r in records], np.float64)
  values = np.asarray([r[feature] for r in records], np.float64)[np.argsort(times, kind='stable')]
  times = np.sort(times)
  bad = np.flatnonzero(~np.isfinite(values))
  if len(bad):
    raise errors.UserError(
        f'dataset {name!r}: split {split!r} has {len(bad)} missing or non-finite value(s) '
        f'(first: {values[bad[0]]} at time {times[bad[0]]:g}); a series must be finite at every '
        'step: fill or drop the gaps before preparing it')
  return values


def cut(values: np.ndarray, context: int, horizon: int, stride: int) -> dict[str, np.ndarray]:
  """{'input': [n, context], 'target': [n, horizon]} windows of one split (raw values)."""
  starts = np.arange(0, len(values) - context - horizon + 1, stride)
  offsets = np.arange(context + horizon)
  windows = values[starts[:, None] + offsets[None, :]] if len(starts) else np.zeros(
      (0, context + horizon))
  return {'input': windows[:, :context], 'target': windows[:, context:]}


def windows(name: str, builder, encoding: encoding_lib.Encoding,
            dataset_cfg) -> tuple[dict, tuple[float, float]]:
  """({role: {'input': float32 [n, context] standardized, 'target': float32 [n, horizon]}},
  the train split's (mean, std)); UserError for a window longer than a split or a NaN. The
  context and horizon are the encoding's input and target lengths (`dataset.context_length`,
  `dataset.horizon`), the stride `dataset.stride`."""
  context, horizon = encoding.input_shape[0], encoding.target_shape[0]
  stride = encoding_lib.positive_int(dataset_cfg, 'stride', schema.DATASET_FIELDS['stride'])
  missing = [r for r in ROLES if r not in builder.info.splits]
  if missing:
    raise errors.UserError(f'dataset {name!r} is a series without the split(s) {missing}; a '
                           'series builder writes train, validation and test stretches of time')
  series = {role: read_split(name, builder, role) for role in ROLES}
  for role, values in series.items():
    if context + horizon > len(values):
      raise errors.UserError(
          f'dataset.context_length={context} + dataset.horizon={horizon} = {context + horizon} '
          f'steps is longer than the {role} split of {name!r} ({len(values)} steps); a window '
          f'must lie inside one split, so use at most {len(values)} steps in all')
  mean, std = fit_scale(series['train'])
  out = {}
  for role, values in series.items():
    window = cut(values, context, horizon, stride)
    out[role] = {'input': ((window['input'] - mean) / std).astype(np.float32),
                 'target': window['target'].astype(np.float32)}
  return out, (mean, std)
