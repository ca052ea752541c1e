"""Every shipped config, not just the MLP: a finished run reruns as a no-op; a run killed with
SIGKILL after a checkpoint resumes to exactly the uninterrupted run (same parameters, optimizer
state, metric rows and final metrics); and the families without another end-to-end run learn.

The configs are found by globbing configs/, so a new config file is covered without editing this
test; the few that cannot run here say why in `NOT_HERE`. Each run is a few steps long, except that
the configs in `LEARNS` run 40 steps (ResNet, whose residual branches start at zero, and the GRU,
which starts from PyTorch's small uniform weights: 80) at their own learning rate (no warmup,
constant schedule), and the training loss of their last 5 steps must be under `FRACTION` of the
first step's (`FRACTIONS` for the slower starters). The full runs and their results are in the
README; this only guards that each family still learns. Configs with a large training split train
on a share of it (`SHARES`, `dataset.train_fraction`): a run ends by evaluating its whole training
split, which for the 18,000 addition problems took longer than the training here. The DQN configs
run shorter rollouts that learn from the second step on (`OVERRIDES`).
"""
import json
import pathlib
import signal
import subprocess

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
# default.py trains to >= 97% through the CLI on 1 and 8 devices in test_train.py; gpt_addition.py
# trains there too (checkpoint, then generation), and gpt_fsdp.py (built on it) in
# test_sharding.py; the MNIST-1D MLP and linear model have their sweep tests.
LEARNS = {'cnn_digits.py': 40, 'mnist1d_cnn.py': 40, 'mnist1d_gru.py': 80,
          'resnet_digits.py': 80, 'vgg_digits.py': 40, 'vit_digits.py': 40,
          'wavenet_tones.py': 40, 'bert_addition.py': 40}
FRACTION = 0.7
# WaveNet at its config's learning rate is slower to start: 40 steps reached 0.69 of the first
# step's loss (measured), too close to 0.7 to be a stable check; a model that does not learn
# stays near 1.0.
FRACTIONS = {'wavenet_tones.py': 0.8}
SHARES = {'gpt_addition.py': 0.05, 'bert_addition.py': 0.05,  # 900 of 18,000 problems.
          'deepspeech_speech.py': 0.1}  # 360 of 3,600 utterances.
# The DQN configs collect 1,000 environment steps per loop step and learn only after 10,000
# (MinAtar: 5,000): 8 steps would never update the network. Shorter rollouts and an early
# start make every loop step after the first learn, so the resume covers the learner's state too.
OVERRIDES = {
    'dqn_cartpole.py': ('dqn.rollout_length=20', 'dqn.learning_starts=200'),
    'dqn_acrobot.py': ('dqn.rollout_length=20', 'dqn.learning_starts=200'),
    'dqn_breakout_minatar.py': ('dqn.rollout_length=50', 'dqn.learning_starts=200'),
}


def _steps(spec: str) -> tuple[int, int]:
  """(total steps, checkpoint interval): the kill lands after the first checkpoint."""
  return (LEARNS[spec], 10) if spec in LEARNS else (8, 2)


def _command(spec: str, workdir: pathlib.Path) -> list[str]:
  steps, every = _steps(spec)
  args = [f'--config.total_steps={steps}', f'--config.checkpoint_every={every}',
          f'--config.eval_every={2 * every}', '--config.log_every=1',
          '--config.keep_checkpoints=10']
  if spec in LEARNS:
    args += ["--config.optimizer.schedule='constant'", '--config.optimizer.warmup_steps=0']
  if spec in SHARES:
    args.append(f'--config.dataset.train_fraction={SHARES[spec]}')
  args += [f'--config.{override}' for override in OVERRIDES.get(spec, ())]
  return ['train', '--config', f'configs/{spec}', *args, '--workdir', str(workdir)]


def _train(spec, workdir):
  result = run_cli(*_command(spec, workdir), devices=1)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _killed_after_first_checkpoint(spec: str, workdir: pathlib.Path) -> None:
  """Starts the run and SIGKILLs it as soon as its first checkpoint is committed. A run that
  finishes before the kill lands (a loaded machine) is started afresh in a new directory."""
  marker = workdir / 'checkpoints' / str(_steps(spec)[1]) / 'commit_success.txt'
  for _ in range(3):
    result = run_cli(*_command(spec, workdir), devices=1, kill_when=marker)
    if result.returncode == -signal.SIGKILL:
      assert not (workdir / 'summary.json').exists()
      return
    assert result.returncode == 0, result.stderr[-3000:]
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
  if spec in LEARNS:
    losses = [r['loss'] for r in _rows(whole) if r['split'] == 'train']
    assert len(losses) == LEARNS[spec]
    first, last = losses[0], sum(losses[-5:]) / 5
    assert last < FRACTIONS.get(spec, FRACTION) * first, (spec, first, last)
  before = _files(whole)
  rerun = _train(spec, whole)
  assert 'nothing to do' in rerun.stderr
  assert _files(whole) == before  # A no-op rerun rewrites nothing.

  _killed_after_first_checkpoint(spec, killed)
  resumed = _train(spec, killed)
  assert 'resumed from step' in resumed.stderr
  steps = _steps(spec)[0]
  for a, b in zip(_state(whole, steps), _state(killed, steps), strict=True):
    np.testing.assert_array_equal(a, b)
  assert _rows(whole) == _rows(killed)
  summary = lambda w: json.loads((w / 'summary.json').read_text())['final']
  assert summary(whole) == summary(killed)
