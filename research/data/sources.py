"""Where the pipeline reads a split's examples: TFDS records, or windows cut from its text.

Both kinds of source answer `len(source)` and `source.read(indices)`, which returns the stored
arrays of those examples ({'input', 'label'?, 'prompt_length'?}, see `Encoding.stack`); the
pipeline turns gathered arrays into batches with `Encoding.batch`.
"""
import re
from typing import Sequence

import numpy as np

from research import errors
from research.data import encoding as encoding_lib

# The most bytes of text a split may hold to be cut into windows (they are held in memory).
MAX_TEXT_BYTES = 1 << 30
_READ_CHUNK = 256  # Records decoded per call.
# 'train', or a slice with absolute bounds as `catalog` writes them: 'train[:3600]'.
_SPLIT = re.compile(r'^(?P<split>[\w.-]+)(?:\[(?P<start>\d*):(?P<stop>\d*)\])?$')


class RecordSource:
  """The examples of a TFDS split string (e.g. 'train[:3600]'), one per record.

  A record that cannot be read (a damaged file that `catalog.prepare` did not read through: a
  large dataset) is a UserError naming the dataset's directory, followed by `rebuild`.
  """

  def __init__(self, builder, split: str, encoding: encoding_lib.Encoding, rebuild: str = ''):
    self._builder = builder
    self._split = split
    self._rebuild = rebuild
    try:
      self._source = builder.as_data_source(split=split)
    except RuntimeError as e:  # The ArrayRecord reader, on opening a damaged file.
      raise self._damaged(e) from e
    self._encoding = encoding

  def _damaged(self, error: Exception) -> errors.UserError:
    lines = str(error).strip().splitlines()
    return errors.UserError(
        f'the prepared dataset in {self._builder.data_dir} is damaged (split {self._split!r}: '
        f'{lines[0][:200] if lines else type(error).__name__}); '
        f'{self._rebuild or "delete that directory and prepare the dataset again"}')

  def __len__(self) -> int:
    return len(self._source)

  def read(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
    try:
      records = self._source.__getitems__([int(i) for i in indices])
    except RuntimeError as e:  # "Corrupted Riegeli/records file", "index N out of bound N".
      raise self._damaged(e) from e
    return self._encoding.stack(records)


class WindowSource:
  """Examples that are rows of in-memory arrays: token windows [n, seq_len], or a series'
  forecasting windows {'input': [n, context], 'target': [n, horizon]}."""

  def __init__(self, windows: np.ndarray | dict[str, np.ndarray]):
    self._arrays = dict(windows) if isinstance(windows, dict) else {'input': windows}

  def __len__(self) -> int:
    return len(self._arrays['input'])

  def read(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
    indices = np.asarray(indices, np.int64)
    return {key: array[indices] for key, array in self._arrays.items()}


def text_windows(name: str, builder, split: str, feature: str, seq_len: int) -> np.ndarray:
  """The UTF-8 bytes of every text of TFDS split `split`, concatenated in the data source's
  order and cut into consecutive windows: uint8 [len // seq_len, seq_len] (the rest dropped)."""
  source = builder.as_data_source(split=split)
  parts, total = [], 0
  for start in range(0, len(source), _READ_CHUNK):
    for example in source.__getitems__(list(range(start, min(start + _READ_CHUNK,
                                                             len(source))))):
      text = example[feature]
      parts.append(text.encode('utf-8') if isinstance(text, str) else bytes(text))
      total += len(parts[-1])
      if total > MAX_TEXT_BYTES:
        raise errors.UserError(
            f'dataset {name!r}: split {split!r} has more than {MAX_TEXT_BYTES} bytes of text, '
            'too many to cut into windows in memory')
  data = np.frombuffer(b''.join(parts), np.uint8)
  count = len(data) // seq_len
  return data[:count * seq_len].reshape(count, seq_len)


def open_split(builder, encoding: encoding_lib.Encoding, split: str,
               windows: dict[str, np.ndarray], rebuild: str = '') -> RecordSource | WindowSource:
  """The source of split string `split` (a `DatasetInfo.splits` value).

  For text (or a series) cut into windows, `windows` maps TFDS split names to their windows, and
  the slice bounds in `split` count windows, not records. `rebuild`: how to replace a damaged copy.
  """
  if encoding.kind not in ('windows', 'series'):
    return RecordSource(builder, split, encoding, rebuild)
  match = _SPLIT.match(split)
  if not match or match['split'] not in windows:
    raise ValueError(f'split {split!r} is not one of {sorted(windows)}, sliced or not')
  start = int(match['start']) if match['start'] else None
  stop = int(match['stop']) if match['stop'] else None
  chosen = windows[match['split']]
  if isinstance(chosen, dict):
    return WindowSource({key: array[start:stop] for key, array in chosen.items()})
  return WindowSource(chosen[start:stop])
