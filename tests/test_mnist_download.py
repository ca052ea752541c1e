"""The official MNIST files: download with checksums, the offline error, and their own splits.

No test reaches the network: downloads come from a local HTTP server on 127.0.0.1 that serves
small IDX files the test writes itself, and the offline case points the mirrors at a port that
refuses connections.
"""
import functools
import gzip
import hashlib
import http.server
import pathlib
import threading

import ml_collections
import numpy as np
import pytest

from conftest import run_cli
from research import config as config_lib, data
from research.data import idx, mnist_idx_builder
from research.errors import UserError

MNIST_T10K = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'mnist-t10k'
REFUSED = 'http://127.0.0.1:9/'  # The discard port: nothing listens there.


def _write_pair(directory, prefix, n, seed):
  """Writes PREFIX-images/labels IDX files of `n` random 28x28 digits; returns (images, labels)."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, n, dtype=np.uint8)
  for suffix, array in ((idx.IMAGES_SUFFIX, images), (idx.LABELS_SUFFIX, labels)):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, '>u4').tobytes()
    with gzip.open(directory / f'{prefix}{suffix}', 'wb') as f:
      f.write(header + array.tobytes())
  return images, labels


def _files(directory) -> dict:
  """{name: (bytes, sha256)} of the files in `directory`, as `OFFICIAL_FILES` lists them."""
  return {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
          for p in sorted(directory.iterdir())}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


@pytest.fixture
def fake_mirror(tmp_path):
  """(base URL, directory served, their images and labels): a local mirror of tiny MNIST files
  (200 training and 50 test digits) under the official names."""
  served = tmp_path / 'mirror'
  served.mkdir()
  arrays = {'train': _write_pair(served, 'train', 200, 0),
            't10k': _write_pair(served, 't10k', 50, 1)}
  handler = functools.partial(_QuietHandler, directory=str(served))
  with http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler) as server:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/', served, arrays
    server.shutdown()
  thread.join()


def _cfg(data_dir, manual_dir='', download=True):
  return ml_collections.ConfigDict({'name': 'mnist_idx', 'data_dir': str(data_dir),
                                    'manual_dir': str(manual_dir), 'validation_fraction': 0.1,
                                    'download': download})


def test_seed_mlp_defaults_to_the_downloaded_official_files():
  config = config_lib.load('configs/seed_mlp.py')
  assert (config.dataset.name, config.dataset.download, config.dataset.manual_dir) == (
      'mnist_idx', True, '')
  assert 'shared' not in config.to_json()  # Nothing outside the repository by default.
  assert config_lib.load('configs/seed_mlp.py:dataset=mnist_idx').to_json() == config.to_json()
  assert not config_lib.load('configs/seed_mlp.py:dataset=digits').dataset.download


def test_offline_the_seed_experiment_fails_with_one_line_naming_files_and_places(tmp_path):
  data_dir = tmp_path / 'tfds'
  result = run_cli('train', '--config', 'configs/seed_mlp.py', '--workdir', str(tmp_path / 'w'),
                   f'--config.dataset.data_dir={data_dir}',
                   env={mnist_idx_builder.MIRRORS_ENV: REFUSED})
  assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
  # One line besides the run's own log lines (`HH:MM:SS I research] setting up ...`).
  lines = [l for l in result.stderr.splitlines() if l.strip() and ' I research' not in l]
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
  assert lines[0].startswith('research train: error: mnist_idx: cannot download'), lines[0]
  manual = data_dir / 'downloads' / 'manual'
  for needle in (*mnist_idx_builder.OFFICIAL_FILES, f'from {REFUSED} into {manual} ',
                 'Connection refused', 'dataset.manual_dir'):
    assert needle in lines[0], lines[0]
  assert list(manual.iterdir()) == []  # No partial file left behind.


def test_download_tries_each_mirror_and_keeps_only_files_with_the_right_checksum(
    tmp_path, fake_mirror):
  url, served, _ = fake_mirror
  files = _files(served)
  dest = tmp_path / 'manual'
  mnist_idx_builder.download_official(str(dest), files, [REFUSED, url])
  assert _files(dest) == files
  # A mirror that serves other bytes than the checksum says: refused, and nothing kept.
  other = tmp_path / 'other'
  wrong = dict(files, **{'t10k-labels-idx1-ubyte.gz': (files['t10k-labels-idx1-ubyte.gz'][0],
                                                       '0' * 64)})
  with pytest.raises(UserError, match=f'expected .* bytes with SHA-256 {"0" * 64}') as error:
    mnist_idx_builder.download_official(str(other), wrong, [url])
  message = str(error.value)
  assert '\n' not in message and 'fetch t10k-labels-idx1-ubyte.gz, train-' in message, message
  kept = {p.name for p in other.iterdir()}
  assert 't10k-labels-idx1-ubyte.gz' not in kept and not any(n.endswith('.part') for n in kept)
  # A file already there that is not the official one is named, not trusted nor overwritten.
  with pytest.raises(UserError, match='t10k-images-idx3-ubyte.gz is not the official'):
    mnist_idx_builder.download_official(
        str(dest), dict(files, **{'t10k-images-idx3-ubyte.gz': (1, '1' * 64)}), [url])
  assert _files(dest) == files


def test_download_true_fetches_the_official_files_and_keeps_their_splits(
    tmp_path, fake_mirror, monkeypatch):
  url, served, arrays = fake_mirror
  monkeypatch.setattr(mnist_idx_builder, 'OFFICIAL_FILES', _files(served))
  monkeypatch.setenv(mnist_idx_builder.MIRRORS_ENV, f'{REFUSED},{url}')
  cfg = _cfg(tmp_path / 'tfds')
  info = data.prepare(cfg)
  assert info.split_sizes == {'train': 180, 'validation': 20, 'test': 50}
  assert _files(tmp_path / 'tfds' / 'downloads' / 'manual') == _files(served)
  batches = list(data.eval_batches(cfg, 'test', 64))
  inputs = np.concatenate([b['input'][b.get('mask', slice(None))] for b in batches])
  expected = arrays['t10k'][0].astype(np.float32)[..., None] / 255  # TFDS stores them shuffled.
  assert sorted(row.tobytes() for row in inputs) == sorted(row.tobytes() for row in expected)
  # Prepared once: no download again (the mirrors are gone), the same splits.
  monkeypatch.setenv(mnist_idx_builder.MIRRORS_ENV, REFUSED)
  assert data.prepare(cfg).split_sizes == info.split_sizes
  # A data_dir whose mnist_idx was made from other files is not taken for the official set.
  manual = tmp_path / 'mine'
  manual.mkdir()
  _write_pair(manual, 'mine', 40, 2)
  mixed = tmp_path / 'mixed'
  assert data.prepare(_cfg(mixed, manual)).split_sizes['test'] == 8  # The 80/20 holdout.
  with pytest.raises(UserError, match='prepared from other files than the official'):
    data.prepare(_cfg(mixed))


def test_the_real_mnist_test_set_has_the_official_checksums_and_split(tmp_path):
  if not (MNIST_T10K / 't10k-images-idx3-ubyte.gz').exists():
    pytest.skip(f'MNIST test set not found in {MNIST_T10K}')
  real = {n: v for n, v in _files(MNIST_T10K).items() if n.startswith('t10k-')}
  assert real == {n: v for n, v in mnist_idx_builder.OFFICIAL_FILES.items() if n in real}
  # The official digests accept the real files (copied in place, as a finished download is).
  manual = tmp_path / 'manual'
  manual.mkdir()
  for name in real:
    (manual / name).write_bytes((MNIST_T10K / name).read_bytes())
  mnist_idx_builder.download_official(str(manual), real, [REFUSED])  # Nothing left to fetch.
  # With a (tiny, made-up) train pair beside them, the 10,000 real digits are the test split.
  _write_pair(manual, 'train', 100, 3)
  cfg = _cfg(tmp_path / 'tfds', manual)
  assert data.prepare(cfg).split_sizes == {'train': 90, 'validation': 10, 'test': 10_000}
  labels = np.concatenate([b['label'] for b in data.eval_batches(cfg, 'test', 1000)])
  assert len(labels) == 10_000 and np.bincount(labels).tolist()[:3] == [980, 1135, 1032]
