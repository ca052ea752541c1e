"""TFDS builder `digits`: scikit-learn's 1,797 real 8x8 handwritten digits, prepared offline.

The images ship inside scikit-learn (`sklearn.datasets.load_digits`), so this dataset needs no
network. Pixels are the original 4-bit counts 0..16 (not 0..255), stored as uint8 `image`
[8, 8, 1]. There is no official split: `test` is a fixed seeded 20% holdout (360 examples),
`train` the other 1,437.
"""
import numpy as np
import tensorflow_datasets as tfds

from research.data import local_builder

_DESCRIPTION = """\
The UCI optical recognition of handwritten digits data as shipped by scikit-learn: 1,797 8x8
images whose pixels count set bits in 4x4 blocks (0..16). Test is a fixed seeded 20% holdout.
"""
_CITATION = """\
@misc{uci_optdigits,
  author = {Alpaydin, E. and Kaynak, C.},
  title = {Optical Recognition of Handwritten Digits},
  year = {1998},
  howpublished = {UCI Machine Learning Repository},
}
"""


class Digits(local_builder.LocalBuilder):
  """scikit-learn's 8x8 digits with a fixed 80/20 train/test holdout."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 1,437 train / 360 test, raw 0..16 pixels as uint8.',
  }

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        citation=_CITATION,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('image', 'label'),
        homepage='https://archive.ics.uci.edu/dataset/80',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    # Imported here: scikit-learn is only needed to prepare the data, not to read it.
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    digits = datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    return self._holdout_splits(images, labels)
