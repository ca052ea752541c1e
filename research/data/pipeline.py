"""The grain input pipeline: seeded, sharded, resumable training batches and padded eval batches.

Batches are dicts of NumPy arrays: `input` float32 [batch, *input_shape], `label` int32 [batch],
and for evaluation `mask` bool [batch] (False on padding). Token datasets (`info.input_dtype ==
'int32'`) have `input` int32 [batch, seq_len] (PAD=0) and `prompt_length` int32 [batch] instead,
and `label` only when the dataset has labels (see `encoding`). Eval padding is all zeros: PAD
tokens, label 0, prompt_length 0.

Design: the grain dataset has one element per step (training) or per batch (eval), and one `map`
turns it into a whole batch of examples: the batch's example positions come from a vectorized
permutation, and their data from one NumPy gather. A training shard whose decoded inputs fit in
`IN_MEMORY_BYTES` is decoded into memory once, because decoding TFDS records runs at only ~20k
examples/s here and grain's per-index shuffle at ~100k, both slower than a small model trains
(the seed MLP takes ~380k examples/s). This pipeline serves ~1M examples/s from memory. Larger
shards, and eval splits, are read from the ArrayRecord files batch by batch.

Training (`train_iterator`): each process reads its own shard of the train split, shuffles it
with a seeded permutation that changes every epoch, and batches within the epoch (the remainder
of each epoch is dropped). With `dataset.shuffle='once'` the run instead cycles through one seeded
order of the shard as an endless stream (batch k holds stream positions k*batch ... k*batch +
batch - 1, wrapping around), as the MNIST-1D paper's loop does; no example is dropped for good.
The iterator is a grain `DatasetIterator`, so `get_state()` / `set_state()` (and grain's Orbax
checkpoint handler) resume it exactly.

Evaluation (`eval_batches`): every example of the split exactly once, in the data source's order,
with the last batch padded and masked. Every process yields the same number of batches, so that
collective eval steps line up across hosts.
"""
import math
import threading
from typing import Iterator

import grain
import numpy as np

from research import errors
from research.data import catalog, dataset as dataset_lib

# Threads that assemble batches ahead of the training step (overlapping it: XLA releases the
# GIL). Elements here are whole batches, so a couple of threads and a short buffer suffice.
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)
# A training shard whose decoded inputs fit in this many bytes is loaded into memory once.
IN_MEMORY_BYTES = 1 << 30
# Records decoded per call when loading a shard into memory.
_LOAD_CHUNK = 4096
# `dataset.shuffle`: a new seeded order every epoch (the default), or one seeded order, cycled.
SHUFFLE_MODES = ('every_epoch', 'once')


def _check_args(batch_size: int, process_index: int, process_count: int) -> None:
  if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
      batch_size < 1):
    raise errors.UserError(f'batch_size must be a positive integer, got {batch_size!r}')
  if process_count < 1 or not 0 <= process_index < process_count:
    raise errors.UserError(f'process_index={process_index} must be in [0, process_count='
                           f'{process_count})')


class _Reader:
  """Maps an array of positions in a shard to a batch (see the module docstring).

  Position `p` is example `indices[p]` of the split's source. With `in_memory`, the shard is
  decoded once here (in its stored dtypes) and batches are gathered from memory; otherwise each
  batch is read and decoded from the source when asked for.
  """

  def __init__(self, prepared: catalog.Prepared, split: str, indices: np.ndarray,
               in_memory: bool):
    self._source = prepared.source(split)
    self._encoding = prepared.encoding
    self._indices = indices
    self._memory = None
    if in_memory:
      chunks = [self._source.read(indices[i:i + _LOAD_CHUNK])
                for i in range(0, len(indices), _LOAD_CHUNK)]
      self._memory = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

  def __call__(self, positions: np.ndarray) -> dict:
    if self._memory is not None:
      raw = {k: v[positions] for k, v in self._memory.items()}
    else:
      raw = self._source.read(self._indices[positions])
    return self._encoding.batch(raw)


_CACHED_EPOCHS = 4

class _ShuffledBatches:
  """Step -> the training batch of that step: epoch-wise seeded shuffles, batched in the epoch.

  Epoch `e` visits the shard in the order `permutation(seed, e)`, a NumPy permutation seeded by
  `(seed, e)`, and cuts it into `len // batch_size` batches (the remainder is dropped). This
  replaces `grain.MapDataset.shuffle`, which permutes one index at a time and caps the pipeline
  at ~100k examples/s on this CPU, slower than small models train. Seeding by the pair also keeps
  runs with nearby seeds unrelated, where grain's `seed + epoch` makes run 0's second epoch run
  1's first. With `every_epoch=False`, epoch 0's permutation is cycled through as one endless
  stream instead: a remainder then starts the next pass rather than being dropped every time.
  """

  def __init__(self, reader: _Reader, num_examples: int, batch_size: int, seed: int,
               every_epoch: bool = True):
    self._reader = reader
    self._every_epoch = every_epoch
    self._num_examples = num_examples
    self._batch_size = batch_size
    self._seed = int(seed) % 2**64  # SeedSequence takes non-negative entropy.
    self.steps_per_epoch = num_examples // batch_size
    self._lock = threading.Lock()  # Prefetch threads share the cache below.
    self._permutations = {}  # epoch -> permutation; the newest _CACHED_EPOCHS only.

  def _permutation(self, epoch: int) -> np.ndarray:
    with self._lock:
      permutation = self._permutations.get(epoch)
      if permutation is None:
        rng = np.random.default_rng(np.random.SeedSequence([self._seed, epoch]))
        permutation = self._permutations[epoch] = rng.permutation(self._num_examples)
        # Prefetch threads may ask for several epochs at once when an epoch is a step or two
        # long; the returned array stays valid even if it is evicted from the cache here.
        for old in sorted(self._permutations)[:-_CACHED_EPOCHS]:
          del self._permutations[old]
      return permutation

  def with_seed(self, seed: int) -> '_ShuffledBatches':
    """The same order for another seed (research/run/vectorized.py: one per member seed)."""
    return _ShuffledBatches(self._reader, self._num_examples, self._batch_size, seed,
                            self._every_epoch)

  def positions(self, step: int) -> np.ndarray:
    """The shard positions of the examples of training step `step`, in batch order."""
    if not self._every_epoch:
      stream = (step * self._batch_size + np.arange(self._batch_size)) % self._num_examples
      return self._permutation(0)[stream]
    epoch, batch = divmod(step, self.steps_per_epoch)
    start = batch * self._batch_size
    return self._permutation(epoch)[start:start + self._batch_size]

  def __call__(self, step: int, unused_element) -> dict:
    return self._reader(self.positions(step))


def _fits_in_memory(prepared: catalog.Prepared, num_examples: int) -> bool:
  return num_examples * prepared.encoding.example_bytes <= IN_MEMORY_BYTES


def shuffle_mode(dataset_cfg) -> str:
  """`dataset_cfg.shuffle` ('every_epoch' when unset); UserError naming the allowed modes."""
  mode = getattr(dataset_cfg, 'shuffle', None) or 'every_epoch'
  if mode not in SHUFFLE_MODES:
    raise errors.unknown('dataset.shuffle mode', mode, SHUFFLE_MODES)
  return mode


def _handle(dataset) -> dataset_lib.Dataset:
  """`dataset` itself, or for a `dataset` config a handle opened for this one call."""
  if isinstance(dataset, dataset_lib.Dataset):
    return dataset
  return dataset_lib.open(dataset, verify=False)


def train_iterator(dataset, batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1) -> grain.DatasetIterator:
  """Returns an infinite iterator of this process's training batches.

  Args:
    dataset: the run's `dataset.Dataset` handle (or a `dataset` config, see `catalog.prepare`,
      opened for this call only).
    batch_size: examples per batch in THIS process (the global batch / process_count).
    seed: the run seed; the same seed gives the same batches, every epoch in a new order (or,
      with the dataset config's `shuffle == 'once'`, one order cycled through).
    process_index: this process's index; it reads examples `process_index::process_count`.
    process_count: number of processes. The train split is cut to a multiple of it, so every
      process has the same number of batches per epoch: `(train_size // process_count) //
      batch_size`, which equals `steps_per_epoch(info, batch_size * process_count)`.

  Returns:
    A grain `DatasetIterator` of {'input': float32 [batch_size, ...], 'label': int32
    [batch_size]} (token datasets: see the module docstring), with `get_state()` /
    `set_state()`.
  """
  handle = _handle(dataset)
  prepared, shard = _train_shard(handle, batch_size, process_index, process_count)
  reader = _Reader(prepared, 'train', shard, in_memory=_fits_in_memory(prepared, len(shard)))
  batches = _ShuffledBatches(reader, len(shard), batch_size, seed,
                             every_epoch=shuffle_mode(handle.config) == 'every_epoch')
  # One element per step; its index (the step) decides the epoch and the batch within it, so the
  # iterator's state is just the next step.
  dataset = grain.MapDataset.range(batches.steps_per_epoch).repeat(None).map_with_index(batches)
  return iter(dataset.to_iter_dataset(READ_OPTIONS))


def _train_shard(handle: dataset_lib.Dataset, batch_size: int, process_index: int,
                 process_count: int) -> tuple[catalog.Prepared, np.ndarray]:
  """The prepared data and this process's example indices of the train split."""
  _check_args(batch_size, process_index, process_count)
  prepared = handle.prepared
  per_process = prepared.info.split_sizes['train'] // process_count
  if per_process < batch_size:
    raise errors.UserError(
        f'batch size {batch_size} per process is larger than the {per_process} training examples '
        f'each of the {process_count} process(es) has in {prepared.info.name!r}')
  return prepared, np.arange(per_process * process_count)[process_index::process_count]


def train_order(dataset, batch_size: int, seed: int) -> tuple[dict, _ShuffledBatches]:
  """The single-process training shard decoded into memory ({'input': [n, ...], ...}, as the
  model sees it) and the order `train_iterator` reads it in: `order.positions(step)` are the
  rows of step `step`'s batch, so `{k: v[order.positions(s)]}` is `train_iterator`'s batch `s`
  (research/data/resident.py keeps the examples on the device and gathers there)."""
  handle = _handle(dataset)
  prepared, shard = _train_shard(handle, batch_size, 0, 1)
  examples = _Reader(prepared, 'train', shard, in_memory=True)(np.arange(len(shard)))
  order = _ShuffledBatches(None, len(shard), batch_size, seed,
                           every_epoch=shuffle_mode(handle.config) == 'every_epoch')
  return examples, order


def split_arrays(dataset, split: str) -> dict:
  """Every example of `split` decoded as the model sees it, in the data source's order (the
  order `eval_batches` pads and masks)."""
  handle = _handle(dataset)
  if split not in handle.info.splits:
    raise errors.unknown('split', split, handle.info.splits)
  size = handle.info.split_sizes[split]
  return _Reader(handle.prepared, split, np.arange(size), in_memory=True)(np.arange(size))


def eval_batches(dataset, split: str, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """Returns an iterator of this process's eval batches of `split`, padded and masked.

  Process `i` of `n` evaluates examples `i::n` of the split, in the data source's order. Every
  process yields `ceil(ceil(size / n) / batch_size)` batches: its last real batch is padded
  (inputs, labels and prompt lengths zero, `mask` False) and processes with fewer examples add
  fully masked batches, so that all processes step together.

  Args:
    dataset: the run's `dataset.Dataset` handle (or a `dataset` config, opened for this call).
    split: 'train', 'validation' or 'test'.
    batch_size: examples per batch in this process.
    process_index: this process's index.
    process_count: number of processes.

  Returns:
    An iterator of {'input': float32 [batch_size, ...], 'label': int32 [batch_size], 'mask': bool
    [batch_size]} (token datasets: see the module docstring).
  """
  _check_args(batch_size, process_index, process_count)
  handle = _handle(dataset)
  if split not in handle.info.splits:  # Before opening a handle that is not open yet.
    raise errors.unknown('split', split, handle.info.splits)
  return _padded(handle.prepared, split, batch_size, process_index, process_count)


def _padded(prepared: catalog.Prepared, split: str, batch_size: int, process_index: int,
            process_count: int) -> Iterator[dict]:
  """The generator behind `eval_batches` (separate, so that bad arguments raise at the call)."""
  size = prepared.info.split_sizes[split]
  num_batches = math.ceil(math.ceil(size / process_count) / batch_size)
  shard = np.arange(size)[process_index::process_count]
  empty = {**prepared.encoding.empty(batch_size), 'mask': np.zeros((batch_size,), np.bool_)}
  yielded = 0
  if len(shard):
    reader = _Reader(prepared, split, shard, in_memory=False)
    batches = grain.MapDataset.range(len(shard)).batch(batch_size).map(reader)
    for batch in batches.to_iter_dataset(READ_OPTIONS):
      n = len(batch['input'])
      if n == batch_size:
        yield {**batch, 'mask': np.ones((batch_size,), np.bool_)}
      else:
        padded = {k: v.copy() for k, v in empty.items()}
        for key, value in batch.items():
          padded[key][:n] = value
        padded['mask'][:n] = True
        yield padded
      yielded += 1
  for _ in range(num_batches - yielded):
    yield {k: v.copy() for k, v in empty.items()}


def steps_per_epoch(info: catalog.DatasetInfo, batch_size: int) -> int:
  """Full global batches of `batch_size` in one pass over the train split (floor)."""
  return info.split_sizes['train'] // batch_size


def split_examples(dataset, split: str, batch_size: int = 128) -> dict:
  """Every real example of `split` as host arrays, {'input': [n, ...], 'target' or 'label': ...},
  in the data source's order: `eval_batches` with the padding dropped (for baselines and checks
  outside a run, e.g. scikit-learn on the same split)."""
  batches = list(eval_batches(dataset, split, batch_size))
  return {key: np.concatenate([b[key][b['mask']] for b in batches])
          for key in batches[0] if key != 'mask'}
