"""Every shipped config, not just the MLP: a finished run reruns as a no-op, and a run killed with
SIGKILL after a checkpoint resumes to exactly the uninterrupted run (same parameters, optimizer
state, metric rows and final metrics).

The configs are found by globbing configs/, so a new config file is covered without editing
this test; the few that cannot run here say why in `NOT_HERE`. Each run is a few steps long.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import ROOT, run_cli

# Config files whose data cannot be prepared on an offline machine (their model families are
# covered by the configs named).
NOT_HERE = {
    'seed_mlp.py': 'MNIST files from the network (the mlp family: default.py, mnist1d_mlp.py)',
    'wavenet_speech_commands.py': 'TFDS speech_commands (the wavenet family: wavenet_tones.py)',
    # The same GPT as gpt_addition.py on an 8-device FSDP x tensor mesh, whose resume is tested in
    # tests/test_sharding.py; its final evaluation decodes every answer (~2 min of the suite).
    'gpt_fsdp.py': 'covered by gpt_addition.py here and FSDP resume in test_sharding.py',
}
SPECS = sorted(p.name for p in (ROOT / 'configs').glob('*.py') if p.name not in NOT_HERE)
STEPS = 8
ARGS = [f'--config.total_steps={STEPS}', '--config.checkpoint_every=2', '--config.eval_every=4',
        '--config.log_every=2', '--config.keep_checkpoints=10']


def _command(spec: str, workdir: pathlib.Path) -> list[str]:
  return ['train', '--config', f'configs/{spec}', *ARGS, '--workdir', str(workdir)]


def _train(spec, workdir):
  result = run_cli(*_command(spec, workdir), devices=1)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _killed_after_first_checkpoint(spec: str, workdir: pathlib.Path) -> None:
  """Starts the run and SIGKILLs it as soon as its step-2 checkpoint is committed. A run that
  finishes before the kill lands (a loaded machine) is started afresh in a new directory."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  for _ in range(3):
    proc = subprocess.Popen([sys.executable, '-m', 'research', *_command(spec, workdir)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    marker = workdir / 'checkpoints' / '2' / 'commit_success.txt'
    deadline = time.time() + 600
    while proc.poll() is None and not marker.exists() and time.time() < deadline:
      time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == -signal.SIGKILL:
      assert not (workdir / 'summary.json').exists()
      return
    assert proc.returncode == 0, stderr[-3000:]
    subprocess.run(['rm', '-rf', str(workdir)], check=True)  # Finished first: try again.
  pytest.fail(f'{spec}: the run finished three times before it could be killed')


def _state(workdir: pathlib.Path, step: int) -> list[np.ndarray]:
  restored = ocp.StandardCheckpointer().restore(workdir / 'checkpoints' / str(step) / 'state')
  return [np.asarray(leaf) for leaf in jax.tree.leaves(restored)]


def _rows(workdir: pathlib.Path) -> list[dict]:
  timing = {'steps_per_second', 'examples_per_second', 'seconds'}
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in row.items() if k not in timing} for row in rows]


def _files(workdir: pathlib.Path) -> dict:
  names = ('config.json', 'run.json', 'summary.json', 'metrics.jsonl')
  return {name: (workdir / name).read_bytes() for name in names}


@pytest.mark.slow
@pytest.mark.parametrize('spec', SPECS)
def test_rerun_is_a_noop_and_a_killed_run_resumes_exactly(tmp_path, spec):
  whole, killed = tmp_path / 'whole', tmp_path / 'killed'
  _train(spec, whole)
  before = _files(whole)
  rerun = _train(spec, whole)
  assert 'nothing to do' in rerun.stderr
  assert _files(whole) == before  # A no-op rerun rewrites nothing.

  _killed_after_first_checkpoint(spec, killed)
  resumed = _train(spec, killed)
  assert 'resumed from step' in resumed.stderr
  for a, b in zip(_state(whole, STEPS), _state(killed, STEPS), strict=True):
    np.testing.assert_array_equal(a, b)
  assert _rows(whole) == _rows(killed)
  summary = lambda w: json.loads((w / 'summary.json').read_text())['final']
  assert summary(whole) == summary(killed)
