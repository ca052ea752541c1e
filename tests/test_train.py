"""The runner end to end: accuracy, the workdir contract, device equivalence, resume, eval."""
import json

import jax
import numpy as np
import pytest

import research
from conftest import run_cli
from research import api, config as config_lib
from research.core import steps
from research.errors import UserError


def _config(**overrides):
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, [f'{k}={v!r}' for k, v in overrides.items()])
  return config


def _rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize('devices', [1, 8])
def test_default_config_reaches_97_percent_through_the_cli(tmp_path, devices):
  workdir = tmp_path / 'run'
  result = run_cli('train', '--config', 'configs/default.py', '--workdir', str(workdir),
                   devices=devices)
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['final']['test']['accuracy'] >= 0.97, summary['final']
  assert summary['final']['test']['count'] == 360  # Every test example, exactly once.
  assert summary['devices']['count'] == devices
  assert summary['steps'] == 600 and summary['steps_per_second'] > 0
  assert summary['train_validation_gap']['accuracy'] == pytest.approx(
      summary['final']['train']['accuracy'] - summary['final']['validation']['accuracy'])
  config = json.loads((workdir / 'config.json').read_text())
  assert config['total_steps'] == 600 and config['dataset']['name'] == 'digits'
  rows = _rows(workdir)
  assert {r['split'] for r in rows} == {'train', 'validation', 'test'}
  assert [r['step'] for r in rows if r['split'] == 'validation'] == list(range(20, 601, 20))
  assert any((workdir / 'checkpoints').iterdir())
  assert json.loads(result.stdout.splitlines()[-1])['test_accuracy'] >= 0.97

  again = run_cli('train', '--config', 'configs/default.py', '--workdir', str(workdir),
                  devices=devices)
  assert again.returncode == 0 and 'nothing to do' in again.stderr
  assert json.loads((workdir / 'summary.json').read_text()) == summary

  evaluated = run_cli('eval', '--workdir', str(workdir), '--split', 'test', devices=devices)
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  result = json.loads(evaluated.stdout.splitlines()[-1])
  assert result['step'] == 600 and result['count'] == 360
  assert result['accuracy'] == pytest.approx(summary['final']['test']['accuracy'])


def _train_params(tmp_path, name, **overrides):
  config = _config(total_steps=40, eval_every=20, **overrides)
  summary = research.train_and_evaluate(config, str(tmp_path / name))
  return research.load_run(str(tmp_path / name)).params, summary


def test_mesh_and_pmap_on_8_devices_match_1_device(tmp_path):
  assert jax.device_count() == 8, 'conftest sets 8 CPU devices'
  one, one_summary = _train_params(tmp_path, 'one', num_devices=1)
  mesh, mesh_summary = _train_params(tmp_path, 'mesh', num_devices=8, parallel='mesh')
  pmap, _ = _train_params(tmp_path, 'pmap', num_devices=8, parallel='pmap')
  for other in (mesh, pmap):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), one, other)
  assert mesh_summary['final']['test']['accuracy'] == pytest.approx(
      one_summary['final']['test']['accuracy'], abs=1 / 360 + 1e-9)
  # And training did move the parameters: equality is not the trivial kind.
  fresh = research.load_run(str(tmp_path / 'one'), step=20).params
  assert not np.allclose(fresh['Dense_0']['kernel'], one['Dense_0']['kernel'])


def test_dropout_keys_differ_per_device_and_per_step():
  base = jax.random.PRNGKey(0)
  keys = jax.pmap(lambda step: steps.dropout_rng(base, step, 'd'), axis_name='d')(
      np.zeros(8, np.int32))
  assert len({tuple(np.asarray(k)) for k in keys}) == 8
  assert not np.array_equal(steps.dropout_rng(base, 1), steps.dropout_rng(base, 2))


def test_dropout_runs_under_pmap_are_deterministic(tmp_path):
  a, _ = _train_params(tmp_path, 'a', num_devices=8, parallel='pmap', **{'model.dropout_rate': 0.3})
  b, _ = _train_params(tmp_path, 'b', num_devices=8, parallel='pmap', **{'model.dropout_rate': 0.3})
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_resume_refuses_a_different_model(tmp_path):
  research.train_and_evaluate(_config(total_steps=10, num_devices=1), str(tmp_path / 'w'))
  changed = _config(total_steps=20, num_devices=1, **{'model.hidden_sizes': (32,)})
  with pytest.raises(UserError, match=r'model'):
    research.train_and_evaluate(changed, str(tmp_path / 'w'))
  longer = research.train_and_evaluate(_config(total_steps=20, num_devices=1),
                                       str(tmp_path / 'w'))
  assert longer['steps'] == 20 and longer['resumed_from_step'] == 10
  changes = json.loads((tmp_path / 'w' / 'config_changes.jsonl').read_text().splitlines()[-1])
  assert changes['changes']['total_steps'] == [10, 20]


def _resnet_config(**overrides):
  config = config_lib.load('configs/resnet_digits.py')
  config_lib.apply_overrides(config, [f'{k}={v!r}' for k, v in overrides.items()])
  return config


def test_batchnorm_resnet_agrees_between_1_and_8_devices(tmp_path):
  runs = {}
  for name, devices, mode in [('one', 1, 'mesh'), ('mesh', 8, 'mesh'), ('pmap', 8, 'pmap')]:
    config = _resnet_config(total_steps=12, eval_every=12, num_devices=devices, parallel=mode,
                            **{'model.width': 8, 'optimizer.warmup_steps': 0})
    research.train_and_evaluate(config, str(tmp_path / name))
    runs[name] = research.load_run(str(tmp_path / name)).state
  for other in ('mesh', 'pmap'):
    for tree in ('params', 'batch_stats'):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4),
                   getattr(runs['one'], tree), getattr(runs[other], tree))
  fresh_stats = jax.tree.leaves(runs['one'].batch_stats)
  assert any(np.abs(np.asarray(x)).sum() > 0 for x in fresh_stats)


def test_early_stopping_stops_and_a_rerun_agrees(tmp_path):
  config = _config(total_steps=400, eval_every=10, num_devices=1,
                   **{'early_stopping.metric': 'loss', 'early_stopping.patience': 2,
                      'early_stopping.min_delta': 0.5})
  summary = research.train_and_evaluate(config, str(tmp_path / 'w'))
  assert summary['early_stopping']['stopped'] and summary['steps'] < 400
  assert summary['steps'] == summary['early_stopping']['best_step'] + 20
  again = research.train_and_evaluate(config, str(tmp_path / 'w'))
  assert again == summary  # Finished: the replayed decision is the same, nothing reruns.


def test_bfloat16_compute_keeps_float32_parameters(tmp_path):
  config = _config(total_steps=30, eval_every=30, num_devices=1, dtype='bfloat16')
  summary = research.train_and_evaluate(config, str(tmp_path / 'w'))
  params = research.load_run(str(tmp_path / 'w')).params
  assert {np.asarray(x).dtype for x in jax.tree.leaves(params)} == {np.dtype('float32')}
  assert summary['final']['test']['accuracy'] > 0.5


def test_gpt_checkpoint_generates_text(tmp_path):
  config = config_lib.load('configs/gpt_addition.py')
  config_lib.apply_overrides(config, ['total_steps=30', 'eval_every=30', 'num_devices=1',
                                      'model.num_layers=1', 'model.hidden_size=32',
                                      'model.mlp_dim=64'])
  summary = research.train_and_evaluate(config, str(tmp_path))
  assert 0.0 <= summary['final']['test']['exact_match'] <= 1.0
  assert summary['final']['test']['perplexity'] > 1.0
  greedy = api.generate_text(str(tmp_path), ['12+35=', '7+8='])
  assert greedy[0].startswith('12+35=') and greedy[1].startswith('7+8=')
  assert len(greedy[0]) > len('12+35=')
  assert greedy == api.generate_text(str(tmp_path), ['12+35=', '7+8='])
  sampled = [api.generate_text(str(tmp_path), ['12+35='], temperature=1.5, seed=s)[0]
             for s in (0, 0, 1, 2, 3)]
  assert sampled[0] == sampled[1] and len(set(sampled)) > 1
  cli = run_cli('generate', '--workdir', str(tmp_path), '--prompt', '12+35=')
  assert cli.returncode == 0, cli.stderr[-2000:]
  assert json.loads(cli.stdout.splitlines()[-1]) == {'prompt': '12+35=', 'text': greedy[0]}


@pytest.mark.parametrize('first, second', [((8, 'pmap'), (1, 'mesh')), ((1, 'mesh'), (8, 'mesh'))])
def test_a_checkpoint_resumes_on_another_device_count(tmp_path, first, second):
  (n1, mode1), (n2, mode2) = first, second
  research.train_and_evaluate(_config(total_steps=20, eval_every=10, num_devices=n1,
                                      parallel=mode1), str(tmp_path))
  saved = research.load_run(str(tmp_path)).params
  summary = research.train_and_evaluate(_config(total_steps=40, eval_every=10, num_devices=n2,
                                                parallel=mode2), str(tmp_path))
  assert summary['resumed_from_step'] == 20 and summary['devices']['count'] == n2
  assert summary['final']['test']['accuracy'] > 0.5
  moved = research.load_run(str(tmp_path), step=20).params
  jax.tree.map(np.testing.assert_array_equal, saved, moved)
