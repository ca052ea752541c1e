"""A run killed with SIGKILL and started again ends bit-identical to one never interrupted."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import research
from conftest import ROOT

ARGS = ['--config', 'configs/default.py', '--config.total_steps=1500',
        '--config.checkpoint_every=25', '--config.eval_every=50', '--config.log_every=10',
        '--config.model.dropout_rate=0.2', '--config.num_devices=1']


def _train(workdir, env):
  return subprocess.Popen([sys.executable, '-m', 'research', 'train', *ARGS,
                           '--workdir', str(workdir)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _committed_steps(workdir):
  ckpts = workdir / 'checkpoints'
  return sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.exists() else []


def _metric_rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  reference = tmp_path / 'reference'
  assert _train(reference, env).wait(timeout=600) == 0

  killed = tmp_path / 'killed'
  proc = _train(killed, env)
  deadline = time.time() + 300
  while time.time() < deadline and not any(s >= 100 for s in _committed_steps(killed)):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  steps_at_kill = _committed_steps(killed)
  assert steps_at_kill and max(steps_at_kill) < 1500, steps_at_kill  # Killed part-way.

  resumed = _train(killed, env)
  _, stderr = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, stderr[-2000:]
  assert 'resumed from step' in stderr

  a, b = research.load_run(str(reference)), research.load_run(str(killed))
  assert a.step == b.step == 1500
  leaves = lambda run: jax.tree.leaves((run.state.params, run.state.opt_state, run.state.rng))
  for x, y in zip(leaves(a), leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert _metric_rows(reference) == _metric_rows(killed)
  summary_a = json.loads((reference / 'summary.json').read_text())['final']
  summary_b = json.loads((killed / 'summary.json').read_text())['final']
  assert summary_a == summary_b
