"""Speed accounting: several steps per dispatch equal one at a time; FLOPs by XLA and by formula
agree; MFU and FLOPs land in summary.json; the peak table."""
import importlib.util
import json
import math

import jax
import numpy as np
import pytest

import research
from research import config as config_lib
from research.core import steps
from research.run import flops, parts
from conftest import ROOT
from research.errors import UserError
from test_sharding import TINY


def _config(**overrides):
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, [f'{k}={v!r}' for k, v in overrides.items()])
  return config


def test_four_steps_per_dispatch_equal_one_at_a_time(tmp_path):
  common = dict(total_steps=16, eval_every=8, log_every=4)
  one = research.train_and_evaluate(_config(num_devices=1, **common), str(tmp_path / 'one'))
  four = research.train_and_evaluate(_config(num_devices=8, steps_per_dispatch=4, **common),
                                     str(tmp_path / 'four'))
  rows = {name: [json.loads(line) for line in (tmp_path / name / 'metrics.jsonl').open()]
          for name in ('one', 'four')}
  assert [(r['step'], r['split']) for r in rows['four']] == [
      (r['step'], r['split']) for r in rows['one']]
  for a, b in zip(rows['one'], rows['four']):
    assert a['loss'] == pytest.approx(b['loss'], rel=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               research.load_run(str(tmp_path / 'one')).params,
               research.load_run(str(tmp_path / 'four')).params)
  for summary in (one, four):
    assert summary['flops_per_step'] > 0 and 0 < summary['mfu'] < 1
  assert four['flops_per_step'] == pytest.approx(one['flops_per_step'], rel=0.05)


def test_intervals_must_be_multiples_of_steps_per_dispatch(tmp_path):
  with pytest.raises(UserError, match=r'config.eval_every=10 must be a multiple of '
                                      r'config.steps_per_dispatch=4'):
    research.train_and_evaluate(_config(total_steps=40, eval_every=10, steps_per_dispatch=4),
                                str(tmp_path))
  assert not (tmp_path / 'metrics.jsonl').exists()


def test_xla_flops_match_the_formulas():
  config = config_lib.load('configs/gpt_fsdp.py')
  config_lib.apply_overrides(config, TINY + ['num_devices=1', 'mesh.data=1', 'mesh.fsdp=1',
                                             'mesh.tensor=1', "sharding='data'"])
  exp = parts.build(config)
  state = exp.init_state()
  seq_len = exp.info.input_shape[0] - 1  # The model reads all tokens but the last.
  batch = {'input': np.zeros((16, seq_len + 1), np.int32)}
  step = lambda s, b: steps.train_step(s, b, task=exp.task, loss_fn=exp.loss_fn)
  counted = flops.step_flops(step, state, batch)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  embedding = state.params['embed']['token']['embedding'].size
  embedding += state.params['embed']['position'].size
  formula = flops.transformer_train_flops(params, embedding, 16, seq_len, 1, 32, 256)
  assert 0.7 < counted / formula < 1.5, (counted, formula)

  mlp = parts.build(_config(num_devices=1))
  mlp_state = mlp.init_state()
  images = {'input': np.zeros((64, 8, 8), np.float32), 'label': np.zeros(64, np.int32)}
  counted = flops.step_flops(
      lambda s, b: steps.train_step(s, b, task=mlp.task, loss_fn=mlp.loss_fn), mlp_state, images)
  weights = sum(x.size for x in jax.tree.leaves(mlp_state.params) if x.ndim == 2)
  assert 0.6 < counted / (6 * 64 * weights) < 1.5  # XLA skips the input's gradient: < 6BP.


def test_peak_table_and_mfu():
  assert flops.device_peak('NVIDIA H100 80GB HBM3', 'bfloat16') == 989e12
  assert flops.device_peak('NVIDIA H200', 'float32') == 494e12
  assert flops.device_peak('TPU v5 lite', 'bfloat16') == 197e12
  assert flops.device_peak('TPU v5p', 'bfloat16') == 459e12
  assert flops.device_peak('TPU v4', 'bfloat16') == 275e12
  assert flops.device_peak('NVIDIA A100-SXM4-40GB', 'bfloat16') == 312e12
  assert flops.device_peak('Some future chip') is None
  assert flops.mfu(1e9, 100.0, 1e12) == pytest.approx(0.1)
  assert flops.mfu(None, 100.0, 1e12) is None
  assert flops.measured_cpu_peak() > 1e8  # Measured once, then cached.
  assert flops.measured_cpu_peak() is flops.measured_cpu_peak()


def test_the_gpu_smoke_benchmark_runs_tiny_on_cpu(capsys):
  spec = importlib.util.spec_from_file_location('gpu_smoke', ROOT / 'benchmarks' / 'gpu_smoke.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  rows = module.main(['--preset', 'tiny', '--steps', '3', '--dtypes', 'bfloat16',
                      '--sharding', 'fsdp'])
  assert rows[0]['loss'] < math.log(256) and rows[0]['steps_per_second'] > 0
  assert 0 < rows[0]['mfu'] < 1 and rows[0]['tflops'] > 0
  assert '| bfloat16 |' in capsys.readouterr().out
