"""`dataset.train_fraction`: train on a fixed share of the training split.

The share is the split's first round(fraction * n) examples, by TFDS split slicing, so the choice
is made where the split strings are (research/data/catalog.py) and every reader of the split, the
grain pipeline and the device-resident data alike, sees the same subset. The bundled datasets are
prepared in a shuffled order, so the first examples are a fixed random subset, the same for every
seed, each smaller share inside every larger one.
"""
import math
import numbers

from research import errors


def first_share(splits: dict, sizes: dict, train_fraction) -> tuple[dict, dict]:
  """The first round(train_fraction * n) of the n training examples (`dataset.train_fraction`):
  a fixed subset, the same for every seed, each smaller one inside every larger one (the
  prepared order is already shuffled); validation and test are unchanged."""
  if isinstance(train_fraction, bool) or not isinstance(train_fraction, numbers.Real) or not (
      0.0 < train_fraction <= 1.0):
    raise errors.UserError(f'dataset.train_fraction must be a number in (0, 1], got '
                           f'{train_fraction!r}')
  if train_fraction == 1.0:
    return splits, sizes
  keep = max(1, int(math.floor(sizes['train'] * train_fraction + 0.5)))
  split, _, bounds = splits['train'].partition('[')
  start = int(bounds.split(':')[0] or 0) if bounds else 0
  return ({**splits, 'train': f'{split}[{start}:{start + keep}]'}, {**sizes, 'train': keep})
