"""Datasets: TFDS builders for the bundled datasets, and the grain input pipeline.

Importing this package registers the bundled builders (`digits`, `mnist1d`, `mnist_idx`,
`addition`, `tones`, `speech`, `diabetes`, `sunspots`, `stocks`) with TFDS, so `tfds.builder('digits')` also
works after `import research.data`.
"""
# The builder modules are imported for their side effect: registering the TFDS builders.
from research.data import addition_builder  # pylint: disable=unused-import
from research.data import diabetes_builder  # pylint: disable=unused-import
from research.data import digits_builder  # pylint: disable=unused-import
from research.data import mnist1d_builder  # pylint: disable=unused-import
from research.data import mnist_idx_builder  # pylint: disable=unused-import
from research.data import series_builders  # pylint: disable=unused-import
from research.data import speech_builder  # pylint: disable=unused-import
from research.data import tones_builder  # pylint: disable=unused-import
from research.data.catalog import BUNDLED
from research.data.catalog import DatasetInfo
from research.data.catalog import prepare
from research.data.dataset import Dataset
from research.data.dataset import open  # pylint: disable=redefined-builtin
from research.data.dataset import recorded
from research.data.pipeline import eval_batches
from research.data.pipeline import split_examples
from research.data.pipeline import steps_per_epoch
from research.data.pipeline import train_iterator

__all__ = [
    'BUNDLED',
    'Dataset',
    'DatasetInfo',
    'eval_batches',
    'open',
    'prepare',
    'recorded',
    'split_examples',
    'steps_per_epoch',
    'train_iterator',
]
