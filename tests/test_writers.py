"""Metric writers: each one's files read back, with the matching reader, to the values written."""
import importlib.util
import json

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from research import config as config_lib

from research.errors import UserError
from research.rundir import metric_writers

ROWS = [(10, 'train', {'loss': 2.25, 'accuracy': 0.125, 'count': 640}),
        (20, 'train', {'loss': 1.5, 'accuracy': 0.5, 'count': 640}),
        (20, 'validation', {'loss': 1.75, 'accuracy': 0.4375, 'count': 144}),
        (30, 'train', {'loss': 0.8125, 'accuracy': 0.75, 'count': 640, 'skipped_nonfinite': 1}),
        (30, 'validation', {'loss': 0.9, 'accuracy': 0.7, 'count': 144}),
        (30, 'test', {'loss': 0.95, 'accuracy': 0.6875, 'count': 360})]


def read_tensorboard(logdir) -> dict:
  """{(step, split): {tag: value}} as TensorBoard itself reads the event files."""
  rows = {}
  for split_dir in sorted(p for p in logdir.iterdir() if p.is_dir()):
    reader = event_accumulator.EventAccumulator(str(split_dir))
    reader.Reload()
    for tag in reader.Tags()['scalars']:
      for event in reader.Scalars(tag):
        rows.setdefault((event.step, split_dir.name), {})[tag] = event.value
  return rows


def _write(writer, rows):
  for step, split, values in rows:
    writer.write(step, split, values)


def test_jsonl_and_tensorboard_hold_the_same_rows(tmp_path):
  writer = metric_writers.MultiWriter([metric_writers.JsonlWriter(tmp_path / 'metrics.jsonl'),
                                metric_writers.TensorBoardWriter(tmp_path / 'tensorboard')])
  _write(writer, ROWS)
  writer.close()
  jsonl = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert jsonl == [{'step': step, 'split': split, **values} for step, split, values in ROWS]
  board = read_tensorboard(tmp_path / 'tensorboard')
  assert sorted(board) == sorted((step, split) for step, split, _ in ROWS)
  for step, split, values in ROWS:
    assert board[step, split].keys() == values.keys()
    for name, value in values.items():  # Event files store float32.
      assert board[step, split][name] == pytest.approx(np.float32(value), rel=1e-7)


def test_a_resume_hides_the_points_after_the_restored_step_in_both(tmp_path):
  first = metric_writers.MultiWriter([metric_writers.JsonlWriter(tmp_path / 'metrics.jsonl'),
                               metric_writers.TensorBoardWriter(tmp_path / 'tensorboard')])
  _write(first, ROWS)  # Then killed after step 30; the newest checkpoint is step 20.
  first.close()
  resumed = metric_writers.MultiWriter([metric_writers.JsonlWriter(tmp_path / 'metrics.jsonl'),
                                 metric_writers.TensorBoardWriter(tmp_path / 'tensorboard')])
  assert resumed.truncate_after(20) == 3  # The three JSONL rows of step 30.
  rerun = [(30, 'train', {'loss': 0.5, 'accuracy': 0.875}), (40, 'validation', {'loss': 0.25})]
  _write(resumed, rerun)
  resumed.close()
  expected = [(s, p, v) for s, p, v in ROWS if s <= 20] + rerun
  jsonl = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert jsonl == [{'step': s, 'split': p, **v} for s, p, v in expected]
  board = read_tensorboard(tmp_path / 'tensorboard')
  # The first process's step-30 points (train, validation, test) are gone from TensorBoard's
  # view, not only overwritten: the test split has nothing after step 20 any more.
  assert sorted(board) == sorted((s, p) for s, p, _ in expected)
  assert board[30, 'train'] == {'loss': 0.5, 'accuracy': 0.875}


def test_tensorboard_can_be_switched_off(tmp_path):
  from research.rundir import workdir as workdir_lib
  config = config_lib.base()
  with_board = workdir_lib.Workdir(tmp_path / 'a').metric_writer(config)
  config.tensorboard = False
  without = workdir_lib.Workdir(tmp_path / 'b').metric_writer(config)
  kinds = lambda w: {type(x).__name__ for x in w.writers}
  assert kinds(with_board) == {'JsonlWriter', 'LogWriter', 'TensorBoardWriter'}
  assert kinds(without) == {'JsonlWriter', 'LogWriter'}
  with_board.close()
  without.close()


@pytest.mark.skipif(importlib.util.find_spec('wandb') is not None, reason='wandb is installed')
def test_wandb_switched_on_without_the_package_says_how_to_install_it():
  config = config_lib.load('configs/default.py')
  config_lib.validate(config)  # Off by default: nothing is needed.
  config.wandb.enabled = True
  with pytest.raises(UserError, match=r'needs the wandb package: pip install wandb'):
    config_lib.validate(config)


def test_wandb_mode_is_validated():
  config = config_lib.load('configs/default.py')
  config.wandb.enabled, config.wandb.mode = True, 'cloud'
  with pytest.raises(UserError, match=r"config.wandb.mode must be one of online, offline, "
                                      r"disabled, got 'cloud'"):
    config_lib.validate(config)
