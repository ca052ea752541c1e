"""A run opens its dataset once, and a finished run's model loads without its data.

The handle (research/data/dataset.py) is built once per run and shared by the training iterator
and every evaluation; each opening logs one DEBUG line ('opened dataset ...'), which these tests
count. A run records its dataset's info in dataset.json, from which `load_run` rebuilds the
model without reading, preparing or even creating the data_dir; a workdir written before that
record existed still loads, by opening the data as before.
"""
import json
import logging
import pathlib
import shutil

import numpy as np
import pytest

import research
from research import config as config_lib, data
from research.errors import UserError


class _Opened(logging.Handler):
  """Counts the 'opened dataset' lines of the `research` logger while installed."""

  def __init__(self):
    super().__init__(logging.DEBUG)
    self.count = 0

  def emit(self, record):
    self.count += record.getMessage().startswith('opened dataset ')

  def __enter__(self):
    self._logger = logging.getLogger('research')
    self._level = self._logger.level
    self._logger.setLevel(logging.DEBUG)
    self._logger.addHandler(self)
    return self

  def __exit__(self, *unused):
    self._logger.removeHandler(self)
    self._logger.setLevel(self._level)


@pytest.fixture(scope='module')
def finished(tmp_path_factory) -> tuple[pathlib.Path, int]:
  """A finished 4-step MLP run on digits with two evaluations on the way, and how many times
  its training opened the dataset."""
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, ['total_steps=4', 'eval_every=2', 'num_devices=1'])
  workdir = tmp_path_factory.mktemp('finished') / 'w'
  with _Opened() as opened:
    research.train_and_evaluate(config, str(workdir))
  return workdir, opened.count


def _copy(finished, tmp_path: pathlib.Path, data_dir: pathlib.Path | None = None) -> pathlib.Path:
  """A copy of the finished workdir; with `data_dir`, its config.json reads the data there."""
  workdir = tmp_path / 'w'
  shutil.copytree(finished[0], workdir)
  if data_dir is not None:
    stored = json.loads((workdir / 'config.json').read_text())
    stored['dataset']['data_dir'] = str(data_dir)
    (workdir / 'config.json').write_text(json.dumps(stored))
  return workdir


def test_a_run_opens_its_dataset_once_and_records_its_info(finished, data_dir):
  workdir, opened = finished
  assert opened == 1  # Not once more for the iterator and for each of the 4 evaluations.
  recorded = json.loads((workdir / 'dataset.json').read_text())
  cfg = config_lib.load('configs/default.py').dataset
  cfg.data_dir = data_dir
  assert recorded == data.open(cfg, verify=False).record()
  assert recorded['input_shape'] == [8, 8, 1] and recorded['num_classes'] == 10
  assert recorded['split_sizes']['test'] == 360 and sum(recorded['split_sizes'].values()) == 1797


def test_load_run_reads_no_data_and_batch_opens_it_when_asked(finished, tmp_path, monkeypatch):
  empty, elsewhere = tmp_path / 'empty', tmp_path / 'elsewhere'
  empty.mkdir()
  monkeypatch.setenv('TFDS_DATA_DIR', str(elsewhere))  # Not read either.
  workdir = _copy(finished, tmp_path, data_dir=empty)
  with _Opened() as opened:
    run = research.load_run(str(workdir))
  assert opened.count == 0
  assert run.step == 4 and run.config.dataset.data_dir == str(empty)
  assert run.predict(np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 10)
  assert run.params and list(empty.iterdir()) == [] and not elsewhere.exists()
  # The data is opened (here: prepared, digits being bundled) only for batches, and only once.
  with _Opened() as opened:
    first, labels = run.batch('test', size=4)
    again, _ = run.batch('test', size=4)
  assert opened.count == 1 and first.shape == (4, 8, 8, 1) and labels.shape == (4,)
  np.testing.assert_array_equal(first, again)
  assert list(empty.iterdir())


def test_eval_opens_the_data_once_and_refuses_data_unlike_the_recorded(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  with _Opened() as opened:
    result = research.evaluate_workdir(str(workdir), 'test')
  assert opened.count == 1 and result['step'] == 4 and result['count'] == 360
  record = json.loads((workdir / 'dataset.json').read_text())
  record['split_sizes']['test'] = 359
  (workdir / 'dataset.json').write_text(json.dumps(record))
  with pytest.raises(UserError, match=r"not the one this run was trained on \(split_sizes"):
    research.evaluate_workdir(str(workdir), 'test')


def test_a_workdir_without_dataset_json_opens_the_data_to_load(finished, tmp_path):
  """Workdirs written before runs recorded their dataset still load."""
  workdir = _copy(finished, tmp_path)
  (workdir / 'dataset.json').unlink()
  with _Opened() as opened:
    run = research.load_run(str(workdir))
    inputs, _ = run.batch('test', size=2)
  assert opened.count == 1 and run.step == 4 and inputs.shape == (2, 8, 8, 1)


def test_a_damaged_dataset_json_is_named(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  (workdir / 'dataset.json').write_text('{"name": "digits"}')
  with pytest.raises(UserError, match=r'dataset\.json is damaged \(lacks num_classes'):
    research.load_run(str(workdir))
