"""A DQN agent (research/run/agent.py) is one more program of the loop: `research train` on an
agent's config writes the contract's files; a run killed with SIGKILL, or stopped with SIGTERM
(exit 143), resumes bit-identically (whole agent: networks, optimizer, replay, environments,
RNG); bad input is one line and exit 2 with nothing on disk lost; K seeds train as one vmapped
group. Runs are tiny (6 loop steps of 200 environment steps); learning itself is measured in
experiments/results/dqn/.
"""
import json
import signal
import subprocess

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import run_cli
from research import config as config_lib
from research.core import dqn, envs, replay
from research.errors import UserError
from research.models import mlp
from research.run import agent, agent_parts

STEPS = 6
ARGS = ['--config', 'configs/dqn_cartpole.py', f'--config.total_steps={STEPS}',
        '--config.dqn.rollout_length=20', '--config.dqn.learning_starts=300',
        '--config.dqn.epsilon_decay_steps=600', '--config.dqn.target_update_every=100',
        '--config.env.eval_episodes=8', '--config.checkpoint_every=1', '--config.eval_every=3',
        '--config.log_every=1', '--config.keep_checkpoints=10']


def _config(**overrides) -> ml_collections.ConfigDict:
  config = config_lib.load('configs/dqn_cartpole.py')
  for key, value in overrides.items():
    target = config
    *groups, name = key.split('.')
    for group in groups:
      target = target[group]
    target[name] = value
  return config


def _rows(workdir):
  timing = {'steps_per_second', 'examples_per_second', 'seconds'}
  return [{k: v for k, v in json.loads(line).items() if k not in timing}
          for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


def _state(workdir, step=STEPS):
  restored = ocp.StandardCheckpointer().restore(workdir / 'checkpoints' / str(step) / 'state')
  return [np.asarray(leaf) for leaf in jax.tree.leaves(restored)]


def _assert_same_run(a, b):
  for x, y in zip(_state(a), _state(b), strict=True):
    np.testing.assert_array_equal(x, y)
  assert _rows(a) == _rows(b)
  final = lambda w: json.loads((w / 'summary.json').read_text())['final']
  assert final(a) == final(b)


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
  """One uninterrupted run that the interrupted ones must reproduce."""
  workdir = tmp_path_factory.mktemp('whole')
  result = run_cli('train', *ARGS, '--workdir', str(workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_a_run_writes_the_contract(whole):
  summary = json.loads((whole / 'summary.json').read_text())
  assert summary['steps'] == STEPS and summary['env_steps'] == STEPS * 200
  assert set(summary['final']) == {'validation', 'test'}
  test = summary['final']['test']
  assert test['episodes'] == 8 and test['return'] >= 1 and test['return_std'] >= 0
  assert summary['env_steps_per_second'] > 0 and summary['train_validation_gap'] is None
  rows = _rows(whole)
  train = [r for r in rows if r['split'] == 'train']
  assert [r['env_steps'] for r in train] == [200 * s for s in range(1, STEPS + 1)]
  assert all({'return', 'length', 'episodes', 'epsilon'} <= set(r) for r in train)
  assert 'loss' not in train[0] and 'loss' in train[-1]  # Learning starts after 300 steps.
  assert train[0]['epsilon'] > train[-1]['epsilon']
  assert [r['step'] for r in rows if r['split'] == 'validation'] == [3, 6]
  saved = ocp.StandardCheckpointer().restore(whole / 'checkpoints' / str(STEPS) / 'state')
  assert {'params', 'target_params', 'opt_state', 'buffer', 'env_state', 'obs', 'rng',
          'env_steps'} <= set(saved)
  assert int(saved['buffer']['size'][0]) == STEPS * 200  # The replay buffer is in it.
  assert int(saved['env_steps'][0]) == STEPS * 200


def _interrupted(workdir, sig, after_step):
  """Runs the training (forked by run_cli) and sends `sig` once checkpoint `after_step` is
  committed (polled every 5 ms); a run that finished first (a loaded machine) is retried in a
  fresh directory."""
  for _ in range(3):
    marker = workdir / 'checkpoints' / str(after_step) / 'commit_success.txt'
    result = run_cli('train', *ARGS, '--workdir', str(workdir), timeout=420, kill_when=marker,
                     kill_signal=sig)
    if result.returncode != 0:
      return result.returncode, result.stderr
    subprocess.run(['rm', '-rf', str(workdir)], check=True)
  pytest.fail('the run finished three times before the signal landed')


def test_sigkill_then_rerun_resumes_bit_identically(whole, tmp_path):
  killed = tmp_path / 'killed'
  code, _ = _interrupted(killed, signal.SIGKILL, after_step=2)
  assert code == -signal.SIGKILL and not (killed / 'summary.json').exists()
  resumed = run_cli('train', *ARGS, '--workdir', str(killed))
  assert resumed.returncode == 0 and 'resumed from step' in resumed.stderr, resumed.stderr[-2000:]
  _assert_same_run(whole, killed)


def test_sigterm_checkpoints_exits_143_and_resumes_bit_identically(whole, tmp_path):
  stopped = tmp_path / 'stopped'
  code, stderr = _interrupted(stopped, signal.SIGTERM, after_step=1)
  assert code == 143, stderr[-2000:]
  assert 'rerun the same command to resume' in stderr
  resumed = run_cli('train', *ARGS, '--workdir', str(stopped))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  _assert_same_run(whole, stopped)


def test_a_finished_run_reruns_as_a_noop(whole):
  before = {p: (whole / p).read_bytes() for p in ('metrics.jsonl', 'summary.json')}
  result = run_cli('train', *ARGS, '--workdir', str(whole))
  assert result.returncode == 0 and 'nothing to do' in result.stderr
  assert {p: (whole / p).read_bytes() for p in before} == before


def test_eval_replays_the_final_greedy_evaluation(whole):
  result = run_cli('eval', '--workdir', str(whole))
  assert result.returncode == 0, result.stderr[-2000:]
  evaluated = json.loads(result.stdout.splitlines()[-1])
  final = json.loads((whole / 'summary.json').read_text())['final']['test']
  assert evaluated == {'step': STEPS, 'split': 'test', **final}


def test_bad_input_on_the_command_line_is_one_line_and_touches_nothing(whole, tmp_path):
  fresh = tmp_path / 'fresh'
  result = run_cli('train', '--config', 'configs/dqn_cartpole.py',
                   "--config.env.name='CartPol-v1'", '--workdir', str(fresh))
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.splitlines() if 'error' in line]
  assert len(errors) == 1 and errors[0].startswith('research train: error: '), result.stderr
  assert "did you mean 'CartPole-v1'" in result.stderr and not fresh.exists()
  before = {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()}
  result = run_cli('train', *ARGS, '--config.dqn.epsilon_end=1.5', '--workdir', str(whole))
  assert result.returncode == 2 and 'epsilon_end must be in [0, 1]' in result.stderr
  assert {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()} == before


@pytest.mark.parametrize('overrides, message', [
    ({'env.name': 'Breakout'}, "did you mean 'Breakout-MinAtar'"),
    ({'dqn.replay_size': 64}, 'smaller than a minibatch'),
    ({'dqn.epsilon_start': -0.1}, 'epsilon_start must be in [0, 1]'),
    ({'dataset.name': 'mnist1d'}, "supervised settings dataset.name='mnist1d'"),
    ({'task': 'regression'}, "supervised settings task='regression'"),
    ({'loss': 'cross_entropy'}, 'not a TD loss'),
    ({'dqn.train_every': 5}, 'use train_every >= 10'),
    ({'dqn.group_devices': 0}, 'group_devices must be an int >= 1'),
])
def test_bad_agent_settings_are_refused(overrides, message):
  with pytest.raises(UserError, match=None) as error:
    agent_parts.build(_config(**overrides))
  assert message in str(error.value)


def test_a_q_network_without_one_output_per_action_is_refused():
  env = envs.make('CartPole-v1')
  with pytest.raises(UserError, match='one output per action'):
    agent_parts._check_outputs(mlp.MLP(hidden_sizes=(8,), num_outputs=3), env, 'mlp')


def test_replay_buffer_wraps_and_samples_what_it_holds():
  buffer = replay.create(6, (1,))
  for start in (0, 4):  # 4 + 4 transitions into 6 places: the two oldest are overwritten.
    values = jnp.arange(start, start + 4, dtype=jnp.float32)
    buffer = replay.add(buffer, values[:, None], values.astype(jnp.int32), values, values[:, None],
                        jnp.zeros(4, bool))
  assert int(buffer.size) == 6 and int(buffer.position) == 2
  assert sorted(np.asarray(buffer.reward).tolist()) == [2, 3, 4, 5, 6, 7]
  sample = replay.sample(buffer, jax.random.PRNGKey(0), 64)
  assert set(np.asarray(sample['action']).tolist()) <= {2, 3, 4, 5, 6, 7}


def test_epsilon_is_linear_then_flat_and_train_rows_report_the_last_env_step():
  s = dqn.Settings.from_config(config_lib.resolve(_config(), 1))
  assert float(dqn.epsilon(s, 0)) == 1.0 and float(dqn.epsilon(s, 10**7)) == pytest.approx(0.05)
  assert float(dqn.epsilon(s, 125_000)) == pytest.approx(0.525)
  returns = agent_parts.Returns(env_steps_per_step=1000)
  sums = {'env_steps': (3000.0 + 4000 + 5000, 3.0), 'return': (60.0, 3.0), 'loss': (0.0, 0.0)}
  assert returns.summarize(sums) == {'env_steps': 5000, 'return': 20.0, 'episodes': 3}


def test_seeds_train_as_one_vmapped_group(tmp_path):
  configs = []
  for seed in (0, 1):
    config = _config(seed=seed, total_steps=4, eval_every=2, checkpoint_every=2,
                     **{'dqn.rollout_length': 20, 'dqn.learning_starts': 200,
                        'env.eval_episodes': 4})
    config.progress = 'none'
    configs.append(config)
  dirs = [str(tmp_path / f'seed{s}') for s in (0, 1)]
  summaries = agent.train_group(configs, dirs, str(tmp_path / 'group'))
  assert [s['vectorized'] for s in summaries] == [2, 2]
  assert summaries[0]['final']['test'] != summaries[1]['final']['test']  # Their own seeds.
  for d in dirs:
    saved = ocp.StandardCheckpointer().restore(f'{d}/checkpoints/4/state')
    assert saved['env_steps'].shape == (1,)  # A single run's layout: one member.
  with pytest.raises(UserError, match='differ in more than the seed'):
    agent.train_group([configs[0], _config(**{'dqn.gamma': 0.9})], dirs, str(tmp_path / 'g2'))


def _group(root, devices: int, total_steps: int, seeds=range(5)):
  """A vectorized group of tiny agents over `devices` devices: its member workdirs, summaries."""
  configs = []
  for seed in seeds:
    config = _config(seed=seed, total_steps=total_steps, eval_every=2, checkpoint_every=2,
                     **{'dqn.rollout_length': 20, 'dqn.learning_starts': 200,
                        'env.eval_episodes': 4, 'dqn.group_devices': devices})
    config.progress = 'none'
    configs.append(config)
  dirs = [root / f'seed{s}' for s in seeds]
  return dirs, agent.train_group(configs, [str(d) for d in dirs], str(root / 'group'))


def test_a_group_spread_over_devices_equals_one_device_and_resumes_on_another_count(tmp_path):
  """5 seeds over 2 devices (shares of 3 and 2, each its own program, run at once) give every
  member the results of the one-device group bit for bit, and a group checkpoint written by the
  spread group resumes on one device. The test process has 8 CPU devices (conftest)."""
  assert [(d.id, (s.start, s.stop)) for d, s in agent.member_shares(5, jax.devices()[:2])] == [
      (0, (0, 3)), (1, (3, 5))]
  assert len(agent.member_shares(3, jax.devices())) == 1  # At least 2 members per device.
  one_dirs, one = _group(tmp_path / 'one', devices=1, total_steps=4)
  spread_dirs, spread = _group(tmp_path / 'spread', devices=2, total_steps=2)
  assert [s['group_devices'] for s in spread] == [2] * 5 and one[0]['group_devices'] == 1
  spread_dirs, spread = _group(tmp_path / 'spread', devices=1, total_steps=4)  # Resumes at 2.
  for a, b, sa, sb in zip(one_dirs, spread_dirs, one, spread):
    assert sb['resumed_from_step'] == 2 and sa['final'] == sb['final']
    for x, y in zip(_state(a, 4), _state(b, 4), strict=True):
      np.testing.assert_array_equal(x, y)
    rows = lambda w: [r for r in _rows(w) if r['split'] != 'test']
    assert rows(a) == rows(b)
  assert one[0]['final'] != one[4]['final']  # The members are their own seeds.
