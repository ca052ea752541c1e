"""Base class for the bundled TFDS builders, which prepare data without a network.

Each bundled dataset (`digits`, `mnist1d`, `mnist_idx`) is a `GeneratorBasedBuilder` in its own
module of this package. They share two things, kept here:

- a fix for TFDS's `code_path`, which otherwise imports the optional `importlib_resources`
  package during `download_and_prepare` and fails where it is not installed;
- the fixed, seeded train/test holdout used by datasets that ship without an official split.
"""
import math

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

# Seed and fraction of the holdout that makes a test split where the source has none. Changing
# either changes the data: bump the builders' versions if you do.
HOLDOUT_SEED = 0
HOLDOUT_TEST_FRACTION = 0.2


def holdout_split(num_examples: int) -> tuple[np.ndarray, np.ndarray]:
  """Returns (train_indices, test_indices) of a fixed seeded permutation of `num_examples`.

  The test part is `ceil(20%)` of the examples (360 of the 1,797 digits); both parts are sorted so
  that the written order follows the source order.
  """
  permutation = np.random.default_rng(HOLDOUT_SEED).permutation(num_examples)
  num_test = math.ceil(num_examples * HOLDOUT_TEST_FRACTION)
  return np.sort(permutation[num_test:]), np.sort(permutation[:num_test])


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder whose source data is local (a pip package or files in `manual_dir`)."""

  # TFDS derives `code_path` (used only to look for a `checksums.tsv` beside the builder) through
  # `importlib_resources`, an optional dependency. Our builders download nothing, so a plain path
  # is all that is needed.
  code_path = epath.Path(__file__)

  def _holdout_splits(self, images: np.ndarray, labels: np.ndarray) -> dict:
    """Split generators for `holdout_split` of (images, labels): features `image`, `label`."""
    train, test = holdout_split(len(labels))
    return {'train': self._generate_examples(images, labels, train),
            'test': self._generate_examples(images, labels, test)}

  def _generate_examples(self, images, labels, indices):
    for i in indices:
      yield int(i), {'image': images[i], 'label': labels[i]}
