"""Tests of research.data: the bundled TFDS builders, splits, and the grain pipeline.

Everything is prepared into temporary data_dirs (one per session for the bundled datasets), so
the tests need no network and leave nothing behind.
"""
import gzip
import io
import itertools
import os
import pathlib
import random
import subprocess
import sys
import time

from etils import epath
import grain
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from research import data
from research.data import idx, mnist1d_builder
from research.errors import UserError

MNIST_T10K = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'mnist-t10k')


def _cfg(name, data_dir, manual_dir='', validation_fraction=0.1):
  return ml_collections.ConfigDict({
      'name': name,
      'data_dir': None if data_dir is None else str(data_dir),
      'manual_dir': str(manual_dir),
      'validation_fraction': validation_fraction,
  })


@pytest.fixture(scope='session')
def data_dir(data_dir):  # noqa: F811  (the session's, from conftest.py, as a path)
  """The session's data_dir: each bundled dataset is prepared once, on first use."""
  return pathlib.Path(data_dir)


def _rows(batches):
  """Returns the bytes of every real (unmasked) example's input, in order."""
  rows = []
  for batch in batches:
    mask = batch.get('mask', np.ones(len(batch['label']), bool))
    rows.extend(row.tobytes() for row in batch['input'][mask])
  return rows


def _take(iterator, n):
  return list(itertools.islice(iterator, n))


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['input'], y['input'])
    np.testing.assert_array_equal(x['label'], y['label'])


# Split sizes and preprocessing.


def test_digits_splits_and_preprocessing(data_dir):
  info = data.prepare(_cfg('digits', data_dir))
  assert info.num_classes == 10 and info.input_shape == (8, 8, 1)
  sizes = info.split_sizes
  assert sizes['test'] == 360
  assert sizes['train'] + sizes['validation'] + sizes['test'] == 1797
  assert sizes['validation'] == round(0.1 * (1797 - 360))
  assert data.steps_per_epoch(info, 100) == sizes['train'] // 100
  batch = next(data.train_iterator(_cfg('digits', data_dir), batch_size=256, seed=0))
  assert batch['input'].dtype == np.float32 and batch['input'].shape == (256, 8, 8, 1)
  assert batch['label'].dtype == np.int32 and batch['label'].shape == (256,)
  # Raw pixels are 0..16: divided by 16, not 255.
  assert batch['input'].min() == 0.0 and batch['input'].max() == 1.0


def test_mnist1d_splits(data_dir):
  info = data.prepare(_cfg('mnist1d', data_dir))
  assert info.split_sizes == {'train': 3600, 'validation': 400, 'test': 1000}
  assert info.splits == {'train': 'train[:3600]', 'validation': 'train[3600:]', 'test': 'test'}
  assert info.input_shape == (40,) and info.num_classes == 10
  assert data.prepare(_cfg('mnist1d/original', data_dir)).split_sizes == info.split_sizes


def test_prepare_twice_reuses_the_prepared_data(data_dir):
  data.prepare(_cfg('digits', data_dir))
  info_file = data_dir / 'digits' / '1.0.0' / 'dataset_info.json'
  mtime = info_file.stat().st_mtime_ns
  data.prepare(_cfg('digits', data_dir))
  assert info_file.stat().st_mtime_ns == mtime


def test_processes_preparing_one_dataset_at_once_build_it_once(tmp_path):
  """Side-by-side runs on a fresh data_dir (a sweep's jobs, test workers): one prepares the
  dataset, the others wait for it (research/data/build_lock.py) and then read the same data."""
  script = ('import sys, ml_collections; from research import data; print(data.prepare('
            'ml_collections.ConfigDict(dict(name="digits", data_dir=sys.argv[1], manual_dir="", '
            'validation_fraction=0.1))).split_sizes)')
  processes = [subprocess.Popen([sys.executable, '-c', script, str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(3)]
  outputs = [p.communicate(timeout=300)[0] for p in processes]
  assert [p.returncode for p in processes] == [0, 0, 0], outputs
  assert sum('Downloading and preparing' in out for out in outputs) == 1, outputs
  assert len({out.splitlines()[-1] for out in outputs}) == 1  # The same split sizes.


def test_mnist1d_matches_the_generator_and_keeps_global_randomness(data_dir):
  random.seed(7)
  np.random.seed(7)
  before = (random.random(), np.random.rand())
  random.seed(7)
  np.random.seed(7)
  arrays = mnist1d_builder.make_arrays(shuffle_seq=False)
  assert (random.random(), np.random.rand()) == before
  assert arrays['x'].shape == (4000, 40) and arrays['x_test'].shape == (1000, 40)
  # The prepared test split holds exactly the generator's test sequences (in another order).
  test_rows = _rows(data.eval_batches(_cfg('mnist1d', data_dir), 'test', 256))
  assert set(test_rows) == {row.astype(np.float32).tobytes() for row in arrays['x_test']}


def test_mnist1d_shuffled_permutes_positions(data_dir):
  original = _rows(data.eval_batches(_cfg('mnist1d', data_dir), 'test', 1000))
  shuffled = _rows(data.eval_batches(_cfg('mnist1d/shuffled', data_dir), 'test', 1000))
  original = np.frombuffer(b''.join(original), np.float32).reshape(-1, 40)
  shuffled = np.frombuffer(b''.join(shuffled), np.float32).reshape(-1, 40)
  # The same sequences (same order), positions in the authors' benchmark notebook's order:
  # np.random.seed(42); np.random.permutation(40), pinned here against NumPy changes.
  order = mnist1d_builder.SHUFFLED_ORDER
  np.testing.assert_array_equal(order[:8], [19, 16, 15, 26, 4, 12, 37, 27])
  np.testing.assert_array_equal(np.sort(order), np.arange(40))
  np.testing.assert_array_equal(shuffled, original[:, order])


@pytest.mark.parametrize('name', ['digits', 'mnist1d'])
def test_splits_are_disjoint_and_complete(data_dir, name):
  cfg = _cfg(name, data_dir)
  info = data.prepare(cfg)
  rows = {s: _rows(data.eval_batches(cfg, s, 128)) for s in ('train', 'validation', 'test')}
  for split, split_rows in rows.items():
    assert len(split_rows) == len(set(split_rows)) == info.split_sizes[split]
  assert not set(rows['train']) & set(rows['validation'])
  assert not set(rows['train']) & set(rows['test'])
  assert not set(rows['validation']) & set(rows['test'])


# Training iterator.


def test_train_iterator_is_deterministic(data_dir):
  cfg = _cfg('mnist1d', data_dir)
  first = _take(data.train_iterator(cfg, batch_size=64, seed=3), 5)
  _assert_same_batches(first, _take(data.train_iterator(cfg, batch_size=64, seed=3), 5))
  other = _take(data.train_iterator(cfg, batch_size=64, seed=4), 1)[0]
  assert not np.array_equal(first[0]['input'], other['input'])


def test_every_epoch_is_a_new_shuffle_of_the_whole_train_split(data_dir):
  cfg = _cfg('mnist1d', data_dir)
  train = set(_rows(data.eval_batches(cfg, 'train', 500)))
  steps = data.steps_per_epoch(data.prepare(cfg), 400)  # 3600 / 400: no remainder.
  batches = _take(data.train_iterator(cfg, batch_size=400, seed=0), 2 * steps)
  epoch1, epoch2 = _rows(batches[:steps]), _rows(batches[steps:])
  assert len(set(epoch1)) == len(epoch1) == len(train) and set(epoch1) == train
  assert set(epoch2) == train
  assert epoch1 != epoch2


def test_shuffle_once_cycles_one_seeded_order(data_dir):
  """`dataset.shuffle='once'` (the MNIST-1D paper's loop): one order, cycled through as a stream,
  so a batch that does not divide the split wraps around instead of dropping the same examples
  every pass."""
  cfg = _cfg('mnist1d', data_dir)
  cfg.shuffle = 'once'
  train = _rows(data.eval_batches(cfg, 'train', 500))
  stream = _rows(_take(data.train_iterator(cfg, batch_size=700, seed=0), 12))  # 2.33 passes.
  assert len(stream) == 8400 and sorted(stream[:3600]) == sorted(train)
  assert stream[3600:7200] == stream[:3600] and stream[7200:] == stream[:1200]
  # The order is the default mode's first epoch; another seed gives another order.
  default = _take(data.train_iterator(_cfg('mnist1d', data_dir), batch_size=400, seed=0), 9)
  assert _rows(default) == stream[:3600]
  other = _take(data.train_iterator(cfg, batch_size=400, seed=1), 9)
  assert _rows(other) != stream[:3600]
  cfg.shuffle = 'never'
  with pytest.raises(UserError, match="unknown dataset.shuffle mode 'never'.*every_epoch, once"):
    data.train_iterator(cfg, batch_size=400, seed=0)


def test_one_step_epochs_with_prefetch_threads(data_dir):
  """Prefetch threads then ask for several epochs' shuffles at once (a past race: KeyError)."""
  cfg = _cfg('digits', data_dir)
  assert data.steps_per_epoch(data.prepare(cfg), 1024) == 1
  iterator, batches = data.train_iterator(cfg, batch_size=1024, seed=0), []
  for _ in range(80):  # A slow consumer lets the prefetch threads run epochs ahead.
    batches.append(next(iterator))
    time.sleep(0.01)
  assert len({b['label'].tobytes() for b in batches}) == 80  # A new shuffle every epoch.
  _assert_same_batches(batches, _take(data.train_iterator(cfg, batch_size=1024, seed=0), 80))


def test_get_state_set_state_resumes_exactly(data_dir):
  cfg = _cfg('digits', data_dir)
  iterator = data.train_iterator(cfg, batch_size=100, seed=1)  # 12 steps per epoch.
  _take(iterator, 10)
  state = iterator.get_state()
  expected = _take(iterator, 5)  # Crosses into the second epoch.
  resumed = data.train_iterator(cfg, batch_size=100, seed=1)
  resumed.set_state(state)
  _assert_same_batches(expected, _take(resumed, 5))


def test_grain_checkpoint_handler_round_trip(data_dir, tmp_path):
  cfg = _cfg('digits', data_dir)
  iterator = data.train_iterator(cfg, batch_size=50, seed=2)
  _take(iterator, 3)
  grain.checkpoint.CheckpointHandler().save(epath.Path(tmp_path), item=iterator)
  expected = _take(iterator, 2)
  restored = grain.checkpoint.CheckpointHandler().restore(
      epath.Path(tmp_path), item=data.train_iterator(cfg, batch_size=50, seed=2))
  _assert_same_batches(expected, _take(restored, 2))


def test_process_shards_are_disjoint_and_cover_the_train_split(data_dir):
  cfg = _cfg('mnist1d', data_dir)
  train = set(_rows(data.eval_batches(cfg, 'train', 500)))
  shards = []
  for process in range(2):
    iterator = data.train_iterator(cfg, batch_size=200, seed=0, process_index=process,
                                   process_count=2)
    shards.append(_rows(_take(iterator, 9)))  # 1800 examples per process: one epoch.
  assert len(set(shards[0])) == 1800 and len(set(shards[1])) == 1800
  assert not set(shards[0]) & set(shards[1])
  assert set(shards[0]) | set(shards[1]) == train


def test_train_batch_larger_than_the_shard_is_a_user_error(data_dir):
  with pytest.raises(UserError, match='batch size'):
    data.train_iterator(_cfg('digits', data_dir), batch_size=5000, seed=0)


# Evaluation batches.


def test_eval_visits_every_example_once_with_padding(data_dir):
  cfg = _cfg('digits', data_dir)
  batches = list(data.eval_batches(cfg, 'test', 64))  # 360 = 5 * 64 + 40.
  assert len(batches) == 6
  assert all(b['input'].shape == (64, 8, 8, 1) and b['mask'].dtype == np.bool_ for b in batches)
  assert sum(int(b['mask'].sum()) for b in batches) == 360
  assert not batches[-1]['mask'][40:].any() and (batches[-1]['input'][40:] == 0).all()
  rows = _rows(batches)
  assert len(set(rows)) == 360
  assert rows == _rows(data.eval_batches(cfg, 'test', 64))  # A fixed order.


def test_eval_with_several_processes(data_dir):
  cfg = _cfg('digits', data_dir)
  per_process = [list(data.eval_batches(cfg, 'test', 50, process_index=p, process_count=3))
                 for p in range(3)]
  assert {len(b) for b in per_process} == {3}  # ceil(ceil(360 / 3) / 50).
  rows = [set(_rows(b)) for b in per_process]
  assert sum(len(r) for r in rows) == 360
  assert set.union(*rows) == set(_rows(data.eval_batches(cfg, 'test', 50)))
  # More processes than batches of real data: the extra batches are fully masked.
  many = [list(data.eval_batches(cfg, 'test', 64, process_index=p, process_count=8))
          for p in (0, 7)]
  assert len(many[0]) == len(many[1]) == 1


def test_eval_unknown_split(data_dir):
  with pytest.raises(UserError, match="unknown split 'valid'.*did you mean 'validation'"):
    data.eval_batches(_cfg('digits', data_dir), 'valid', 10)


# mnist_idx.


def _write_idx(path, array, type_code=0x08):
  header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, '>u4').tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype('>u1').tobytes())


def _tiny_idx_dir(directory, sizes=(30, 20)):
  """Writes IDX pairs `a-*` and `b-*` with random images; returns all images, in file order."""
  rng = np.random.default_rng(0)
  images = []
  for prefix, n in zip('ab', sizes):
    pair_images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    _write_idx(directory / f'{prefix}{idx.IMAGES_SUFFIX}', pair_images)
    _write_idx(directory / f'{prefix}{idx.LABELS_SUFFIX}',
               rng.integers(0, 10, n, dtype=np.uint8))
    images.append(pair_images)
  return np.concatenate(images)


def test_mnist_idx_reads_a_tiny_idx_set(tmp_path):
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  images = _tiny_idx_dir(manual_dir)
  cfg = _cfg('mnist_idx', tmp_path / 'tfds', manual_dir)
  info = data.prepare(cfg)
  assert info.input_shape == (28, 28, 1)
  assert sum(info.split_sizes.values()) == 50 and info.split_sizes['test'] == 10
  rows = set()
  for split in ('train', 'validation', 'test'):
    rows |= set(_rows(data.eval_batches(cfg, split, 16)))
  expected = (images[..., None].astype(np.float32) / 255).reshape(50, 28, 28, 1)
  assert rows == {row.tobytes() for row in expected}
  # Other files in manual_dir than the prepared ones: refused, not silently reused.
  _tiny_idx_dir(manual_dir, sizes=(31, 20))
  with pytest.raises(UserError, match='prepared from other files'):
    data.prepare(cfg)


def test_mnist_idx_on_the_real_mnist_test_set(tmp_path):
  if not os.path.exists(os.path.join(MNIST_T10K, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'MNIST test set not found in {MNIST_T10K}')
  cfg = _cfg('mnist_idx', tmp_path, MNIST_T10K)
  info = data.prepare(cfg)
  assert sum(info.split_sizes.values()) == 10_000 and info.split_sizes['test'] == 2000
  batches = list(data.eval_batches(cfg, 'test', 500))
  inputs = np.concatenate([b['input'] for b in batches])
  labels = np.concatenate([b['label'] for b in batches])
  assert inputs.shape == (2000, 28, 28, 1)
  assert inputs.min() == 0.0 and inputs.max() == 1.0
  assert set(labels.tolist()) == set(range(10))


def test_malformed_idx_files_are_user_errors(tmp_path):
  with pytest.raises(UserError, match='bad magic'):
    idx.parse_idx(b'\x00\x00\x07\x01' + bytes(8), 'x')
  with pytest.raises(UserError, match='header says shape'):
    idx.parse_idx(bytes([0, 0, 8, 1]) + np.array([5], '>u4').tobytes() + bytes(3), 'x')
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  (manual_dir / f'x{idx.IMAGES_SUFFIX}').write_bytes(b'not gzip at all')
  (manual_dir / f'x{idx.LABELS_SUFFIX}').write_bytes(b'not gzip at all')
  with pytest.raises(UserError, match='cannot read as a gzipped IDX file'):
    data.prepare(_cfg('mnist_idx', tmp_path / 'tfds', manual_dir))
  os.remove(manual_dir / f'x{idx.LABELS_SUFFIX}')
  with pytest.raises(UserError, match=f'has no x{idx.LABELS_SUFFIX}'):
    data.prepare(_cfg('mnist_idx', tmp_path / 'tfds', manual_dir))


def test_mnist_idx_without_files_names_the_dir_and_the_files(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(UserError, match=f'{empty}.*images-idx3-ubyte.gz'):
    data.prepare(_cfg('mnist_idx', tmp_path / 'tfds', empty))


# Names, data_dirs and config values.


def test_unknown_dataset_name_suggests_a_close_name(tmp_path):
  with pytest.raises(UserError, match="unknown dataset 'digitz' \\(did you mean 'digits'\\?\\)"):
    data.prepare(_cfg('digitz', tmp_path))
  with pytest.raises(UserError, match="did you mean 'mnist'"):
    data.prepare(_cfg('mnsit', tmp_path))
  with pytest.raises(UserError, match="unknown dataset 'mnist1d/scrambled'"):
    data.prepare(_cfg('mnist1d/scrambled', tmp_path))


def test_standard_tfds_name_not_prepared_says_how_to_prepare(tmp_path, monkeypatch):
  def no_network(self, **kwargs):
    raise ConnectionError('no network')
  # Without dataset.download, nothing is fetched: the error comes at once.
  monkeypatch.setattr(tfds.builder_cls('mnist'), 'download_and_prepare', no_network)
  with pytest.raises(UserError, match=f"'mnist'.*{tmp_path}.*tfds build mnist.*download=True"):
    data.prepare(_cfg('mnist', tmp_path))
  # With it, TFDS tries (hermetic here: the download is replaced by a failing one).
  cfg = _cfg('mnist', tmp_path)
  cfg.download = True
  with pytest.raises(UserError, match="could not be downloaded here \\(ConnectionError: no network\\)"):
    data.prepare(cfg)


class TinyPngDigits(tfds.core.GeneratorBasedBuilder):
  """A standard-style TFDS dataset (PNG `image`, own validation split) built by the test."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(4, 4, 1)),
            'label': tfds.features.ClassLabel(num_classes=3),
        }))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(20), 'validation': self._generate_examples(6),
            'test': self._generate_examples(5)}

  def _generate_examples(self, n):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    for i in range(n):
      png = io.BytesIO()
      Image.fromarray(np.full((4, 4), 17 * (i % 16), np.uint8)).save(png, format='PNG')
      yield i, {'image': png.getvalue(), 'label': i % 3}


def test_a_prepared_standard_tfds_dataset_works(tmp_path):
  tfds.builder('tiny_png_digits', data_dir=tmp_path).download_and_prepare(
      file_format='array_record')
  cfg = _cfg('tiny_png_digits', tmp_path, validation_fraction=0.5)
  info = data.prepare(cfg)
  # Its own validation split is used; validation_fraction only applies when there is none.
  assert info.split_sizes == {'train': 20, 'validation': 6, 'test': 5}
  assert info.input_shape == (4, 4, 1) and info.num_classes == 3
  batch = next(data.train_iterator(cfg, batch_size=8, seed=0))
  assert batch['input'].dtype == np.float32 and batch['input'].max() <= 1.0
  values = np.concatenate([b['input'][b['mask']] for b in data.eval_batches(cfg, 'train', 8)])
  assert sorted(np.unique(values * 255).round().tolist())[-1] == 255.0


@pytest.mark.parametrize('fraction', [0, 1, -0.1, 1.5, 'a', None])
def test_bad_validation_fraction(tmp_path, fraction):
  with pytest.raises(UserError, match='validation_fraction'):
    data.prepare(_cfg('digits', tmp_path, validation_fraction=fraction))


def test_data_dir_that_is_a_file(tmp_path):
  path = tmp_path / 'file'
  path.write_text('')
  with pytest.raises(UserError, match='not a directory'):
    data.prepare(_cfg('digits', path))
