"""Two processes x 4 CPU devices (JAX's gloo collectives) train exactly like 1 process x 8 devices.

Full-batch training (batch = the 3,600 MNIST-1D training examples) makes every step's gradient
independent of which process read which example, so the two runs must agree to float rounding;
a process reading the wrong share (or the same share twice) would change the gradient.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import research
from conftest import ROOT
from research import config as config_lib
from research.devices.multihost import settings
from research.errors import UserError

ARGS = ['--config', 'configs/mnist1d_mlp.py', '--config.batch_size=3600',
        '--config.eval_batch_size=1000', '--config.total_steps=12', '--config.eval_every=6',
        '--config.log_every=3']


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _rows(workdir, split='train'):
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [r for r in rows if r['split'] == split]


def test_two_processes_equal_one_process_with_eight_devices(tmp_path):
  # The reference: this process, with conftest's 8 devices (it also prepares the dataset once,
  # before the two processes could race to).
  config = config_lib.load('configs/mnist1d_mlp.py')
  config_lib.apply_overrides(config, [a[len('--config.'):] for a in ARGS[2:]])
  research.train_and_evaluate(config, str(tmp_path / 'one'))

  port, workdir = _free_port(), tmp_path / 'two'
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  processes = [subprocess.Popen(
      [sys.executable, '-m', 'research', 'train', *ARGS, '--workdir', str(workdir),
       '--coordinator-address', f'127.0.0.1:{port}', '--num-processes', '2',
       '--process-id', str(i)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in processes]
  for p, (_, err) in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]

  summary = json.loads((workdir / 'summary.json').read_text())
  reference = json.loads((tmp_path / 'one' / 'summary.json').read_text())
  assert summary['devices']['processes'] == 2 and summary['devices']['count'] == 8
  assert reference['devices']['processes'] == 1 and reference['devices']['count'] == 8
  # Only process 0 writes metrics: one row per logged step, not two.
  assert [r['step'] for r in _rows(workdir)] == [3, 6, 9, 12]
  np.testing.assert_allclose([r['loss'] for r in _rows(workdir)],
                             [r['loss'] for r in _rows(tmp_path / 'one')], rtol=1e-5)
  assert _rows(workdir)[-1]['loss'] < _rows(workdir)[0]['loss']
  for split in ('validation', 'test'):
    assert summary['final'][split]['count'] == reference['final'][split]['count']
    assert summary['final'][split]['loss'] == pytest.approx(
        reference['final'][split]['loss'], rel=1e-5)
  # Checkpoints were written by both processes together; they read back whole on one device.
  assert sorted(p.name for p in (workdir / 'checkpoints' / '12' / 'data').iterdir()
                if p.name.startswith('process_')) == ['process_0-of-2.json', 'process_1-of-2.json']
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               research.load_run(str(workdir)).params,
               research.load_run(str(tmp_path / 'one')).params)


class _Args:
  def __init__(self, **kwargs):
    self.distributed = kwargs.pop('distributed', False)
    self.coordinator_address = kwargs.pop('coordinator_address', None)
    self.num_processes = kwargs.pop('num_processes', None)
    self.process_id = kwargs.pop('process_id', None)


def test_distributed_settings_from_flags_and_environment():
  assert settings(_Args(), {}) is None  # A plain run stays single-process.
  assert settings(_Args(distributed=True), {}) == {}  # JAX detects SLURM / TPU / MPI itself.
  assert settings(_Args(coordinator_address='h:1', num_processes=2, process_id=1), {}) == {
      'coordinator_address': 'h:1', 'num_processes': 2, 'process_id': 1}
  environ = {'JAX_COORDINATOR_ADDRESS': 'h:2', 'JAX_NUM_PROCESSES': '4', 'JAX_PROCESS_ID': '3'}
  assert settings(_Args(), environ) == {'coordinator_address': 'h:2', 'num_processes': 4,
                                        'process_id': 3}
  assert settings(_Args(process_id=0), environ)['process_id'] == 0  # Flags win.
  for args, message in [(_Args(coordinator_address='h'), 'HOST:PORT'),
                        (_Args(coordinator_address='h:1', num_processes=2, process_id=2),
                         r'0\.\.1'),
                        (_Args(num_processes=0), '>= 1')]:
    with pytest.raises(UserError, match=message):
      settings(args, {})
  with pytest.raises(UserError, match='JAX_PROCESS_ID'):
    settings(_Args(), {'JAX_PROCESS_ID': 'x'})
