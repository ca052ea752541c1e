"""Device-resident data (research/data/resident.py): the same run as the host pipeline's.

What equals what, and why: the resident path gathers, on the device, the batches whose positions
the host pipeline's own order gives (`pipeline.train_order`: the NumPy permutation seeded by
(seed, epoch), or the cycled order of shuffle='once'), so batch s is the host iterator's batch s;
the step is the same `steps.train_step`, run inside a `fori_loop` up to the next log / eval /
checkpoint step. Here XLA compiles the loop body's step as it compiles the jitted step, so the two
paths give bit-identical parameters, optimizer state, metric rows and summaries (asserted below
with dropout on, over epoch boundaries, in both shuffle modes). A checkpoint written on one path
resumes on the other (the data position is saved in the grain iterator's format).
Kill-and-resume on the resident path: tests/test_resume.py kills the default config, which runs
resident ('auto': digits fits the budget; asserted here), at random points and at signals.
"""
import json

import jax
import ml_collections
import numpy as np
import pytest

import research
from research import config as config_lib, data
from research.data import pipeline, resident
from research.devices import placement
from research.errors import UserError
from research.run import parts, single_run, train

STEPS = 60  # digits at batch 64: 20 steps per epoch, so three epochs.


def _config(data_dir, **overrides) -> ml_collections.ConfigDict:
  config = config_lib.files.load('configs/default.py')
  config.dataset.data_dir = data_dir
  config.total_steps, config.eval_every, config.checkpoint_every = STEPS, 15, 15
  config.log_every, config.num_devices, config.progress = 7, 1, 'none'
  config.model.dropout_rate = 0.2
  config.tensorboard = False
  for key, value in overrides.items():
    node, *path = key.split('.')
    target = config[node] if path else config
    target[path[0] if path else node] = value
  return config


def _train(workdir, data_dir, **overrides) -> dict:
  return train.train_and_evaluate(_config(data_dir, **overrides), str(workdir))


def _same_run(a, b):
  run_a, run_b = research.load_run(str(a)), research.load_run(str(b))
  assert run_a.step == run_b.step
  leaves = lambda run: jax.tree.leaves((run.state.params, run.state.opt_state, run.state.rng))
  for x, y in zip(leaves(run_a), leaves(run_b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  rows = lambda d: [{k: v for k, v in row.items() if k != 'time'} for row in map(
      json.loads, (d / 'metrics.jsonl').read_text().splitlines()) if row['step'] == STEPS or
                    row['split'] != 'test']  # A run cut short also wrote its test row.
  assert rows(a) == rows(b)
  final = lambda d: json.loads((d / 'summary.json').read_text())['final']
  assert final(a) == final(b)


def test_device_and_host_paths_train_the_same_run(tmp_path, data_dir):
  device, host = tmp_path / 'device', tmp_path / 'host'
  _train(device, data_dir, **{'dataset.placement': 'device'})
  _train(host, data_dir, **{'dataset.placement': 'host'})
  _same_run(device, host)


def test_a_checkpoint_resumes_on_the_other_path(tmp_path, data_dir):
  """Half on the host, the rest on the device ends as one uninterrupted run on the host (with
  shuffle='once', the other order)."""
  whole, mixed = tmp_path / 'whole', tmp_path / 'mixed'
  _train(whole, data_dir, **{'dataset.placement': 'host', 'dataset.shuffle': 'once'})
  _train(mixed, data_dir, total_steps=STEPS // 2,
         **{'dataset.placement': 'host', 'dataset.shuffle': 'once'})
  _train(mixed, data_dir, **{'dataset.placement': 'device', 'dataset.shuffle': 'once'})
  _same_run(whole, mixed)


def test_resident_batches_are_the_host_iterators_and_evaluation_matches(data_dir):
  config = _config(data_dir)
  exp = parts.build(config)
  examples, order = pipeline.train_order(exp.data, config.batch_size, config.seed)
  iterator = data.train_iterator(exp.data, config.batch_size, config.seed)
  for step in range(45):  # Over two epoch boundaries.
    batch = next(iterator)
    for key, value in batch.items():
      np.testing.assert_array_equal(examples[key][order.positions(step)], value)
  on_device, on_host = single_run.Steps(exp), single_run.Steps(exp)
  on_host.is_resident = False
  assert on_device.is_resident
  state = exp.devices.place_state(exp.init_state())
  for split in ('train', 'validation', 'test'):
    a, b = on_device.evaluate(state, split), on_host.evaluate(state, split)
    assert a['count'] == b['count'] == exp.info.split_sizes[split]
    assert a == pytest.approx(b, rel=1e-6)


def test_placement_choice_and_bad_values(data_dir):
  info = data.open(_config(data_dir).dataset).info
  mesh, pmap = placement.create('mesh', 1), placement.create('pmap', 1)
  cfg = lambda **kw: ml_collections.ConfigDict({'placement': 'auto', 'device_budget_mb': 1024,
                                                **kw})
  assert resident.use_device(cfg(), info, mesh, 1)  # The default config runs resident.
  assert not resident.use_device(cfg(placement='host'), info, mesh, 1)
  assert not resident.use_device(cfg(device_budget_mb=0.001), info, mesh, 1)  # Over budget.
  assert resident.use_device(cfg(placement='device', device_budget_mb=0.001), info, mesh, 1)
  assert not resident.use_device(cfg(), info, pmap, 1)
  assert not resident.use_device(cfg(), info, mesh, 2)
  with pytest.raises(UserError, match="parallel='pmap'"):
    resident.use_device(cfg(placement='device'), info, pmap, 1)
  with pytest.raises(UserError, match='allowed: auto, device, host'):
    resident.use_device(cfg(placement='gpu'), info, mesh, 1)
