"""`research eval` on damaged or changing checkpoints, and damaged prepared datasets.

Eval is read-only: a damaged newest checkpoint is skipped with one warning line (never moved, as
`train` does), an unkept `--step` lists the kept steps, and a step that a running training
deletes between listing and reading is skipped. A damaged prepared dataset (a file cut short or
overwritten, a broken JSON, record counts unlike the files) stops a run before training with
one line naming the directory and how to rebuild it.
"""
import json
import os
import pathlib
import shutil

import ml_collections
import pytest

from conftest import run_cli
from research import api, data
from research.devices import placement
from research.core import train_state
from research.errors import UserError
from research.run import parts
from research.rundir import checkpoint, layout

TRAIN = ['--config', 'configs/default.py', '--config.total_steps=4',
         '--config.checkpoint_every=2', '--config.keep_checkpoints=3']


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> pathlib.Path:
  """A 4-step MLP workdir with checkpoints 2 and 4 (shared: tests work on copies)."""
  workdir = tmp_path_factory.mktemp('trained') / 'w'
  result = run_cli('train', *TRAIN, '--workdir', str(workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def _copy(trained: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
  workdir = tmp_path / 'w'
  shutil.copytree(trained, workdir)
  return workdir


def _damage_step(workdir: pathlib.Path, step: int) -> None:
  """Cuts short the largest array file of a step (its index intact), as a cut copy leaves it:
  TensorStore then fails reading an array, with a plain Exception and a page of its spec."""
  files = [f for f in (workdir / 'checkpoints' / str(step) / 'state').rglob('d/*') if f.is_file()]
  largest = max(files, key=lambda f: f.stat().st_size)
  largest.write_bytes(largest.read_bytes()[:1000])


def _tree(directory: pathlib.Path) -> dict:
  return {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob('*')}


def test_eval_falls_back_past_a_damaged_newest_checkpoint_and_moves_nothing(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  _damage_step(workdir, 4)
  before = _tree(workdir)
  result = run_cli('eval', '--workdir', str(workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout)['step'] == 2
  skipped = [line for line in result.stderr.splitlines() if 'checkpoints/4' in line]
  assert len(skipped) == 1 and 'skipped' in skipped[0] and 'read step 2' in skipped[0]
  assert 'Traceback' not in result.stderr and 'TensorStore' not in result.stderr
  assert len(result.stderr.splitlines()) <= 3, result.stderr[-3000:]
  assert _tree(workdir) == before  # Nothing moved, created or deleted.


def test_eval_of_a_step_that_is_not_kept_lists_the_kept_steps(trained):
  with pytest.raises(UserError, match=r'step 3 is not kept in .*; kept steps: 2, 4$'):
    api.evaluate_workdir(str(trained), 'test', step=3)


def test_eval_of_a_damaged_step_says_damaged_in_one_line(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  _damage_step(workdir, 4)
  with pytest.raises(UserError, match=r'checkpoints/4 does not match .* or is damaged') as e:
    api.evaluate_workdir(str(workdir), 'test', step=4)
  assert '\n' not in str(e.value) and 'TensorStore' not in str(e.value)


def test_reading_skips_a_step_removed_after_listing_and_moves_nothing(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  exp = parts.build(placement.fit_to_host(layout.read_config(workdir / 'config.json')))
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)
  assert ckpt.all_steps() == [2, 4]
  shutil.rmtree(workdir / 'checkpoints' / '4')  # A running training's clean-up, meanwhile.
  step, saved = ckpt.restore_newest_good(train_state.state_to_save(exp.init_state()))
  ckpt.close()
  assert step == 2 and int(saved['step']) == 2
  assert not (workdir / checkpoint.DAMAGED).exists()


def test_eval_creates_nothing_in_a_workdir_without_checkpoints(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  shutil.rmtree(workdir / 'checkpoints')
  with pytest.raises(UserError, match='has no checkpoint to restore'):
    api.evaluate_workdir(str(workdir), 'test')
  assert not (workdir / 'checkpoints').exists()


# Damaged prepared datasets.

def _digits(data_dir: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(name='digits', data_dir=data_dir, manual_dir='',
                                        validation_fraction=0.1))


@pytest.fixture(scope='module')
def prepared_digits(data_dir) -> pathlib.Path:
  """The session's prepared `digits` version directory (tests damage copies of it)."""
  data.prepare(_digits(data_dir))
  version_dir, = (pathlib.Path(data_dir) / 'digits').glob('*/dataset_info.json')
  return version_dir.parent


def _copy_dataset(prepared_digits: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
  """A copy of the prepared digits in `tmp_path/tfds`; returns its version directory."""
  copy = tmp_path / 'tfds' / 'digits' / prepared_digits.name
  shutil.copytree(prepared_digits, copy)
  return copy


def _shard(version_dir: pathlib.Path, split: str) -> pathlib.Path:
  shard, = version_dir.glob(f'digits-{split}.array_record-*')
  return shard


def _overwrite_middle(path: pathlib.Path) -> None:
  content = bytearray(path.read_bytes())
  middle = len(content) // 3
  content[middle:middle + 400] = b'\xff' * 400
  path.write_bytes(bytes(content))


def _edit_info(version_dir: pathlib.Path, edit) -> None:
  path = version_dir / 'dataset_info.json'
  info = json.loads(path.read_text())
  edit(info)
  path.write_text(json.dumps(info))


DAMAGE = {
    'train file cut short': (lambda d: os.truncate(_shard(d, 'train'), 100_000),
                             'digits-train.array_record'),
    'test file overwritten': (lambda d: _overwrite_middle(_shard(d, 'test')),
                              'digits-test.array_record'),
    'dataset_info.json cut': (lambda d: (d / 'dataset_info.json').write_text(
        (d / 'dataset_info.json').read_text()[:300]), 'dataset_info.json is not readable JSON'),
    'dataset_info.json emptied': (lambda d: (d / 'dataset_info.json').write_text('{}'),
                                  'dataset_info.json lacks name, version, splits'),
    'features.json cut': (lambda d: (d / 'features.json').write_text(
        (d / 'features.json').read_text()[:200]), 'features.json is not readable JSON'),
    'fewer test records listed': (
        lambda d: _edit_info(d, lambda i: i['splits'][1].update(shardLengths=['100'])),
        'holds 360 records where dataset_info.json says 100'),
    'test records not listed': (
        lambda d: _edit_info(d, lambda i: i['splits'][1].pop('shardLengths')),
        "lists no records for split 'test'"),
}


@pytest.mark.parametrize('damage', sorted(DAMAGE))
def test_a_damaged_prepared_dataset_is_named_when_opened(prepared_digits, tmp_path, damage):
  version_dir = _copy_dataset(prepared_digits, tmp_path)
  assert json.loads((version_dir / 'dataset_info.json').read_text())['splits'][1]['name'] == 'test'
  corrupt, problem = DAMAGE[damage]
  corrupt(version_dir)
  with pytest.raises(UserError) as e:
    data.prepare(_digits(str(tmp_path / 'tfds')))
  message = str(e.value)
  assert 'is damaged' in message and problem in message, message
  assert f'delete {version_dir} and rerun' in message and '\n' not in message


def test_the_named_directory_deleted_the_dataset_is_prepared_again(prepared_digits, tmp_path):
  version_dir = _copy_dataset(prepared_digits, tmp_path)
  _overwrite_middle(_shard(version_dir, 'train'))
  with pytest.raises(UserError, match='is damaged'):
    data.prepare(_digits(str(tmp_path / 'tfds')))
  shutil.rmtree(version_dir)  # What the message says to do.
  info = data.prepare(_digits(str(tmp_path / 'tfds')))
  assert info.split_sizes['test'] == 360


def test_a_damaged_record_read_later_is_named_too(prepared_digits, tmp_path):
  """Datasets too large to read through when opened: a bad chunk is named when it is read."""
  version_dir = _copy_dataset(prepared_digits, tmp_path)
  _overwrite_middle(_shard(version_dir, 'test'))
  with pytest.raises(UserError, match=f'dataset in {version_dir} is damaged .*split .test.'):
    for _ in data.eval_batches(_digits(str(tmp_path / 'tfds')), 'test', 64):
      pass


def test_train_on_a_damaged_dataset_stops_before_training_with_exit_2(prepared_digits, tmp_path):
  version_dir = _copy_dataset(prepared_digits, tmp_path)
  _overwrite_middle(_shard(version_dir, 'test'))  # Read only at the end of training before.
  workdir = tmp_path / 'w'
  result = run_cli('train', *TRAIN, '--workdir', str(workdir),
                   f'--config.dataset.data_dir={tmp_path / "tfds"}')
  assert result.returncode == 2, result.stderr[-3000:]
  error, = [line for line in result.stderr.splitlines() if 'error:' in line]
  assert f'{version_dir} is damaged (digits-test.array_record' in error
  assert f'delete {version_dir} and rerun' in error
  assert not (workdir / 'checkpoints').exists() and not (workdir / 'metrics.jsonl').exists()
