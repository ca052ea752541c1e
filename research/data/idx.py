"""Reader for the IDX file format of MNIST (`*-images-idx3-ubyte.gz`, `*-labels-idx1-ubyte.gz`).

IDX (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number `00 00 TT NN` where `TT` is the
element type and `NN` the number of dimensions, then `NN` big-endian uint32 sizes, then the
elements in C order, big-endian. Every way a file can be wrong raises `UserError` naming the file,
since these files come from the user (`manual_dir`), not from us.
"""
import gzip
import os
import zlib

import numpy as np

from research.errors import UserError

IMAGES_SUFFIX = '-images-idx3-ubyte.gz'
LABELS_SUFFIX = '-labels-idx1-ubyte.gz'

# IDX element type code -> big-endian numpy dtype.
_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


def parse_idx(data: bytes, name: str = '<bytes>') -> np.ndarray:
  """Returns the array stored in the (uncompressed) IDX bytes `data`; `name` is for errors."""
  if len(data) < 4:
    raise UserError(f'{name}: not an IDX file ({len(data)} bytes, shorter than the header)')
  zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
  if zero0 or zero1 or type_code not in _DTYPES:
    raise UserError(f'{name}: not an IDX file (bad magic number 0x{data[:4].hex()}; expected '
                    f'0x0000TTNN with type TT in {sorted(hex(t) for t in _DTYPES)})')
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise UserError(f'{name}: truncated IDX header ({ndim} dimensions need {header_size} bytes)')
  shape = tuple(int(d) for d in np.frombuffer(data, dtype='>u4', count=ndim, offset=4))
  dtype = _DTYPES[type_code]
  expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    raise UserError(f'{name}: IDX header says shape {shape} ({expected} bytes with the header) but '
                    f'the file has {len(data)} bytes')
  array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
  return array.astype(dtype.newbyteorder('='))


def read_idx_gz(path: os.PathLike | str) -> np.ndarray:
  """Returns the array in the gzipped IDX file at `path`."""
  try:
    with gzip.open(path, 'rb') as f:
      data = f.read()
  except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError.
    raise UserError(f'{path}: cannot read as a gzipped IDX file: {e}') from e
  return parse_idx(data, name=str(path))


def find_pairs(directory: os.PathLike | str) -> list[tuple[str, str]]:
  """Returns the sorted (images_path, labels_path) pairs found in `directory`.

  A pair is `PREFIX-images-idx3-ubyte.gz` with `PREFIX-labels-idx1-ubyte.gz` (e.g. MNIST's
  `train-*` and `t10k-*`). Raises `UserError` when there is none or a labels file is missing.
  """
  directory = os.fspath(directory)
  expected = (f'PREFIX{IMAGES_SUFFIX} and PREFIX{LABELS_SUFFIX} (e.g. t10k{IMAGES_SUFFIX}, '
              f't10k{LABELS_SUFFIX})')
  if not os.path.isdir(directory):
    raise UserError(f'mnist_idx: manual_dir {directory!r} is not a directory; it must hold '
                    f'{expected}')
  names = sorted(os.listdir(directory))
  prefixes = [n[:-len(IMAGES_SUFFIX)] for n in names if n.endswith(IMAGES_SUFFIX)]
  if not prefixes:
    raise UserError(f'mnist_idx: no IDX files in manual_dir {directory!r}; expected {expected}')
  pairs = []
  for prefix in prefixes:
    labels = prefix + LABELS_SUFFIX
    if labels not in names:
      raise UserError(f'mnist_idx: {prefix}{IMAGES_SUFFIX} in {directory!r} has no {labels}')
    pairs.append((os.path.join(directory, prefix + IMAGES_SUFFIX),
                  os.path.join(directory, labels)))
  return pairs


def pair_prefix(images_path: os.PathLike | str) -> str:
  """'train' for `.../train-images-idx3-ubyte.gz`: the name that pairs images with labels."""
  return os.path.basename(os.fspath(images_path))[:-len(IMAGES_SUFFIX)]


def read_pair(images_path: os.PathLike | str, labels_path: os.PathLike | str
              ) -> tuple[np.ndarray, np.ndarray]:
  """Reads one pair: (images uint8 [N, H, W], labels int64 [N]), checked to match."""
  images, labels = read_idx_gz(images_path), read_idx_gz(labels_path)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise UserError(f'{images_path}: expected uint8 images [N, H, W], got {images.dtype} '
                    f'{images.shape}')
  if labels.ndim != 1 or labels.dtype != np.uint8:
    raise UserError(f'{labels_path}: expected uint8 labels [N], got {labels.dtype} '
                    f'{labels.shape}')
  if len(images) != len(labels):
    raise UserError(f'{images_path} has {len(images)} images but {labels_path} has '
                    f'{len(labels)} labels')
  return images, labels.astype(np.int64)


def read_image_label_pairs(directory: os.PathLike | str) -> tuple[np.ndarray, np.ndarray]:
  """Reads every pair in `directory` and returns (images uint8 [N, H, W], labels int64 [N]).

  Pairs are concatenated in sorted file-name order, so the result does not depend on the order the
  file system lists them in.
  """
  all_images, all_labels = [], []
  for images_path, labels_path in find_pairs(directory):
    images, labels = read_pair(images_path, labels_path)
    all_images.append(images)
    all_labels.append(labels)
  shapes = {i.shape[1:] for i in all_images}
  if len(shapes) > 1:
    raise UserError(f'IDX files in {directory!r} have different image shapes: {sorted(shapes)}')
  return np.concatenate(all_images), np.concatenate(all_labels)
