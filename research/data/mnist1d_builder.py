"""TFDS builder `mnist1d`: the MNIST-1D benchmark (Greydanus 2020), generated offline.

`mnist1d.data.make_dataset` with the package's default arguments makes 4,000 train / 1,000 test
sequences of length 40 (already centred and scaled to unit variance), stored as float32 `x` [40].
It never calls `mnist1d.get_dataset`, which downloads or writes a pickle in the working directory.

Configs: `original` (the default) and `shuffled`, the paper's variant with the 40 positions put
through one fixed random permutation, which removes spatial structure. The permutation is the one
the authors' benchmark notebook (notebooks/mnist1d-classification.ipynb, which draws the paper's
benchmark figure) applies to the standard data: `np.random.seed(42); np.random.permutation(40)`,
i.e. `SHUFFLED_ORDER`. The package's own `shuffle_seq=True` draws a different permutation (from
the generator's state after making the data); version 1.0.0 of this builder used that one.
"""
import dataclasses
import random

import numpy as np
import tensorflow_datasets as tfds

from research.data import local_builder

_DESCRIPTION = """\
MNIST-1D: ten 1D templates of digits, randomly padded, translated, scaled, sheared and made noisy,
then downsampled to 40 points. Small enough to train on a CPU in seconds, yet it separates
models (MLP, CNN, GRU) the way MNIST no longer does.
"""
_CITATION = """\
@article{greydanus2020scaling,
  title = {Scaling Down Deep Learning},
  author = {Greydanus, Sam},
  journal = {arXiv preprint arXiv:2011.14439},
  year = {2020},
}
"""


# The positions' order in the `shuffled` config: the benchmark notebook's permutation.
SHUFFLED_ORDER = np.random.RandomState(42).permutation(40)


@dataclasses.dataclass
class Mnist1dConfig(tfds.core.BuilderConfig):
  """`shuffle_seq`: put the 40 positions in `SHUFFLED_ORDER`."""
  shuffle_seq: bool = False


def make_arrays(shuffle_seq: bool) -> dict[str, np.ndarray]:
  """Returns {'x', 'y', 'x_test', 'y_test'} from `mnist1d.data.make_dataset`, default args,
  with the positions of `x` and `x_test` in `SHUFFLED_ORDER` if `shuffle_seq`.

  `make_dataset` seeds Python's and NumPy's global random generators; their states are restored
  afterwards so that preparing this dataset has no effect on the caller's randomness.
  """
  from mnist1d import data as mnist1d_data  # pylint: disable=g-import-not-at-top
  args = mnist1d_data.get_dataset_args()
  args.shuffle_seq = False
  python_state, numpy_state = random.getstate(), np.random.get_state()
  try:
    dataset = mnist1d_data.make_dataset(args)
  finally:
    random.setstate(python_state)
    np.random.set_state(numpy_state)
  arrays = {k: np.asarray(dataset[k]) for k in ('x', 'y', 'x_test', 'y_test')}
  if shuffle_seq:
    for key in ('x', 'x_test'):
      arrays[key] = arrays[key][:, SHUFFLED_ORDER]
  return arrays


class Mnist1d(local_builder.LocalBuilder):
  """MNIST-1D, 4,000 train / 1,000 test, in configs `original` and `shuffled`."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: mnist1d.make_dataset with default args (seed 42).',
      '1.1.0': '`shuffled` uses the authors\' benchmark notebook permutation (`SHUFFLED_ORDER`) '
               'instead of make_dataset\'s shuffle_seq; `original` is unchanged.',
  }
  BUILDER_CONFIGS = [
      Mnist1dConfig(name='original', shuffle_seq=False,
                    description='The default MNIST-1D sequences.'),
      Mnist1dConfig(name='shuffled', shuffle_seq=True,
                    description='Positions permuted by one fixed random permutation.'),
  ]
  DEFAULT_CONFIG_NAME = 'original'

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        citation=_CITATION,
        features=tfds.features.FeaturesDict({
            'x': tfds.features.Tensor(shape=(40,), dtype=np.float32),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('x', 'label'),
        homepage='https://github.com/greydanus/mnist1d',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Generated, not downloaded.
    arrays = make_arrays(self.builder_config.shuffle_seq)
    return {
        'train': self._generate_examples(arrays['x'], arrays['y']),
        'test': self._generate_examples(arrays['x_test'], arrays['y_test']),
    }

  def _generate_examples(self, xs, ys):
    for i, (x, y) in enumerate(zip(xs, ys)):
      yield i, {'x': x.astype(np.float32), 'label': int(y)}
