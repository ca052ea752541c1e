"""TFDS builder `mnist_idx`: MNIST-format IDX files from a local directory (`manual_dir`).

For 28x28 work without a network: point `manual_dir` at a directory holding gzipped IDX pairs
(`PREFIX-images-idx3-ubyte.gz` + `PREFIX-labels-idx1-ubyte.gz`; e.g. the official MNIST test set
`t10k-*`). Every pair found is read, concatenated in file-name order, and split into train/test
by a fixed seeded 20% holdout, whatever the files' original roles were.

The prepared dataset records which files it was made from (names and SHA-256 in
`info.metadata['source_files']`), so a data_dir prepared from other files can be detected: TFDS
itself would silently reuse it.
"""
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from research.data import idx
from research.data import local_builder
from research.errors import UserError

_DESCRIPTION = """\
Handwritten digits read from MNIST-format IDX files in manual_dir, split 80/20 into train/test by a
fixed seeded permutation.
"""
_CITATION = """\
@article{lecun1998gradient,
  title = {Gradient-based learning applied to document recognition},
  author = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal = {Proceedings of the IEEE},
  volume = {86}, number = {11}, pages = {2278--2324},
  year = {1998},
}
"""
IMAGE_SHAPE = (28, 28)


def source_files(directory: os.PathLike | str) -> dict[str, str]:
  """Returns {file name: sha256 hex} of the IDX pairs in `directory`."""
  digests = {}
  for pair in idx.find_pairs(directory):
    for path in pair:
      with open(path, 'rb') as f:
        digests[os.path.basename(path)] = hashlib.sha256(f.read()).hexdigest()
  return digests


class MnistIdx(local_builder.LocalBuilder):
  """28x28 digits from gzipped IDX files in `manual_dir`, 80/20 seeded train/test holdout."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: all IDX pairs in manual_dir, fixed seeded 80/20 split.',
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Put gzipped IDX pairs PREFIX{idx.IMAGES_SUFFIX} and PREFIX{idx.LABELS_SUFFIX} (e.g. the MNIST
  files t10k{idx.IMAGES_SUFFIX} and t10k{idx.LABELS_SUFFIX}) in manual_dir.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        citation=_CITATION,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(*IMAGE_SHAPE, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('image', 'label'),
        homepage='http://yann.lecun.com/exdb/mnist/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    try:
      directory = dl_manager.manual_dir
    except AssertionError as e:  # TFDS's way of saying the directory is missing or empty.
      raise UserError(f'mnist_idx: {str(e).splitlines()[0]} It must hold gzipped IDX pairs '
                      f'PREFIX{idx.IMAGES_SUFFIX} and PREFIX{idx.LABELS_SUFFIX}.') from e
    images, labels = idx.read_image_label_pairs(directory)
    if images.shape[1:] != IMAGE_SHAPE:
      raise UserError(f'mnist_idx: images in {directory} are {images.shape[1:]}, expected '
                      f'{IMAGE_SHAPE}')
    if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
      raise UserError(f'mnist_idx: labels in {directory} must be 0..9, found '
                      f'{labels.min()}..{labels.max()}')
    self.info.metadata['source_files'] = source_files(directory)
    return self._holdout_splits(images[..., None], labels)
