"""TFDS builder `mnist_idx`: MNIST-format IDX files from a local directory (`manual_dir`).

`manual_dir` holds gzipped IDX pairs (`PREFIX-images-idx3-ubyte.gz`, `PREFIX-labels-idx1-ubyte.gz`).
When the pairs are exactly MNIST's `train-*` and `t10k-*`, they keep their roles: the official
60,000 / 10,000 train / test split. Any other set of pairs (e.g. the test set `t10k-*` alone) is
read, concatenated in file-name order, and split into train/test by a fixed seeded 20% holdout.

`download_official(directory)` fetches the four official files from `MIRRORS` (or the base URLs
in $RESEARCH_MNIST_MIRRORS), each checked against its size and SHA-256 before it is kept; the
catalog calls it for `dataset.download=True` without a `manual_dir` (TFDS's default manual dir,
DATA_DIR/downloads/manual). TFDS's own `mnist` builder cannot be used for this: it reads the
files through `tf.io.gfile` and encodes `tfds.features.Image`, both of which need TensorFlow.

The prepared dataset records which files it was made from (names and SHA-256 in
`info.metadata['source_files']`), so a data_dir prepared from other files can be detected: TFDS
itself would silently reuse it.
"""
import hashlib
import logging
import os
import tempfile
import urllib.parse
import urllib.request

import numpy as np
import tensorflow_datasets as tfds

from research.data import idx, local_builder
from research.errors import UserError

_DESCRIPTION = """\
Handwritten digits read from MNIST-format IDX files in manual_dir: MNIST's own train/test split when
the files are exactly the official train-* and t10k-* pairs, else split 80/20 into train/test by a
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
OFFICIAL_SPLITS = {'train': 'train', 't10k': 'test'}  # Pair prefix -> split.
# The official files: name -> (bytes, SHA-256). The same values as TFDS's url_checksums/mnist.txt;
# the t10k digests match the copy checked in tests; MD5s as published: f68b3c2d..., d53e105e...,
# 9fb629c4..., ec29112d... (train images, train labels, t10k images, t10k labels).
OFFICIAL_FILES = {
    'train-images-idx3-ubyte.gz': (
        9912422, '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609'),
    'train-labels-idx1-ubyte.gz': (
        28881, '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c'),
    't10k-images-idx3-ubyte.gz': (
        1648877, '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6'),
    't10k-labels-idx1-ubyte.gz': (
        4542, 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6'),
}
MIRRORS = ('https://storage.googleapis.com/cvdf-datasets/mnist/',
           'https://ossci-datasets.s3.amazonaws.com/mnist/')
MIRRORS_ENV = 'RESEARCH_MNIST_MIRRORS'  # Whitespace- or comma-separated base URLs, tried in order.
DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK = 1 << 20
log = logging.getLogger(__name__)


def mirrors() -> list[str]:
  """The base URLs to fetch the official files from: $RESEARCH_MNIST_MIRRORS, else `MIRRORS`."""
  urls = os.environ.get(MIRRORS_ENV, '').replace(',', ' ').split()
  return [u if u.endswith('/') else u + '/' for u in urls] or list(MIRRORS)


def _fetch(url: str, path: str, size: int, sha256: str) -> None:
  """Downloads `url` to `path` when it has `size` bytes and digest `sha256`; else raises OSError
  (or ValueError) and leaves nothing behind. A partial file never has the final name."""
  directory, name = os.path.split(path)
  fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.part', dir=directory)
  try:
    digest, received = hashlib.sha256(), 0
    with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(
        url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
      while chunk := response.read(_CHUNK):
        received += len(chunk)
        if received > size:
          raise ValueError(f'more than the expected {size} bytes')
        digest.update(chunk)
        out.write(chunk)
    if received != size or digest.hexdigest() != sha256:
      raise ValueError(f'{received} bytes with SHA-256 {digest.hexdigest()}, expected {size} '
                       f'bytes with SHA-256 {sha256}')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _sha256(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


def download_official(directory: str, files: dict | None = None,
                      urls: list[str] | None = None) -> None:
  """Makes sure `directory` holds the official MNIST files (`files`: name -> (bytes, SHA-256);
  default `OFFICIAL_FILES`), fetching the missing ones from `urls` (default `mirrors()`).

  Raises:
    UserError (one line) naming the files still missing, where to fetch them from and where to
    put them, when no mirror delivers a file with the right size and SHA-256 (e.g. offline); or
    naming a file already present whose digest is not the official one.
  """
  files = OFFICIAL_FILES if files is None else files
  urls = mirrors() if urls is None else urls
  directory = os.path.abspath(directory)
  for name, (_, sha256) in files.items():
    path = os.path.join(directory, name)
    found = _sha256(path) if os.path.exists(path) else sha256
    if found != sha256:
      raise UserError(f'mnist_idx: {path} is not the official {name} (SHA-256 {found}, expected '
                      f'{sha256}); delete it to download it again')
  missing = [n for n in files if not os.path.exists(os.path.join(directory, n))]
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as e:
    raise UserError(f'mnist_idx: cannot create {directory}: {e.strerror}') from e
  for i, name in enumerate(missing):
    size, sha256 = files[name]
    errors = []
    for base in urls:
      url = urllib.parse.urljoin(base, name)
      try:
        _fetch(url, os.path.join(directory, name), size, sha256)
        log.info('mnist_idx: downloaded %s (%d bytes, SHA-256 checked) from %s into %s', name,
                 size, base, directory)
        break
      except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors.
        errors.append(f'{url}: {" ".join(str(e).split())}')
    else:
      raise UserError(
          f"mnist_idx: cannot download the MNIST files ({'; '.join(errors)}); fetch "
          f"{', '.join(missing[i:])} from {' or '.join(urls)} into {directory} (SHA-256 in "
          f"{__name__}.OFFICIAL_FILES) and rerun, or set dataset.manual_dir to a directory "
          'that holds them')


def official_manual_dir(builder, data_dir: str) -> str:
  """The manual_dir of `dataset.download=True` without one: '' when `builder` (mnist_idx) is
  already prepared from the official files; else TFDS's default manual dir under `data_dir`,
  after `download_official` made sure the files are there. UserError for a prepared dataset
  made from other files."""
  if builder.is_prepared():
    recorded = dict((builder.info.metadata or {}).get('source_files', {}))
    if recorded != {name: sha for name, (_, sha) in OFFICIAL_FILES.items()}:
      raise UserError(
          f'mnist_idx in {builder.data_dir!r} was prepared from other files than the official '
          f'MNIST ones ({sorted(recorded)}); use another data_dir, or delete that directory to '
          'prepare it again')
    return ''
  directory = os.path.join(data_dir, 'downloads', 'manual')
  download_official(directory)
  return directory


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

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: all IDX pairs in manual_dir, fixed seeded 80/20 split.',
      '1.1.0': 'Exactly the pairs train-* and t10k-* (the official files): their own splits.',
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Put gzipped IDX pairs PREFIX{idx.IMAGES_SUFFIX} and PREFIX{idx.LABELS_SUFFIX} (e.g. the MNIST
  files t10k{idx.IMAGES_SUFFIX} and t10k{idx.LABELS_SUFFIX}) in manual_dir, or set
  dataset.download=True without a manual_dir to fetch the four official files.
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
    pairs = {idx.pair_prefix(images): (images, labels)
             for images, labels in idx.find_pairs(directory)}
    self.info.metadata['source_files'] = source_files(directory)
    if set(pairs) != set(OFFICIAL_SPLITS):
      images, labels = _checked(*idx.read_image_label_pairs(directory), directory)
      return self._holdout_splits(images[..., None], labels)
    splits = {}
    for prefix, split in OFFICIAL_SPLITS.items():
      images, labels = _checked(*idx.read_pair(*pairs[prefix]), directory)
      splits[split] = self._generate_examples(images[..., None], labels, range(len(labels)))
    return splits


def _checked(images, labels, directory):
  """(images, labels) after checking that they are 28x28 digits 0..9."""
  if images.shape[1:] != IMAGE_SHAPE:
    raise UserError(f'mnist_idx: images in {directory} are {images.shape[1:]}, expected '
                    f'{IMAGE_SHAPE}')
  if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
    raise UserError(f'mnist_idx: labels in {directory} must be 0..9, found '
                    f'{labels.min()}..{labels.max()}')
  return images, labels
