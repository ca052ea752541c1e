"""DQN on gymnax's Breakout-MinAtar (Young & Tian 2019: Breakout on a 10x10 grid, 4 binary
channels for paddle, ball, trail and bricks; +1 per brick, the episode ends when the ball falls).

Command:
  research train --config configs/dqn_breakout_minatar.py --workdir workdirs/dqn_breakout

The MinAtar paper's DQN (its Q-network: conv 16 3x3 → Dense 128, `cnn` variant 'minatar';
centered RMSProp 2.5e-4 with decay 0.95 and eps 0.01; batch 32; replay 100k; learning from 5k;
target copied every 1,000 environment steps; ε 1 → 0.1 over the first 100k steps; Huber loss;
γ 0.99), with two changes for speed: 4 environments stepped together and one update every 4
environment steps (the Atari DQN's ratio; the paper updates every frame), and 1M environment
steps instead of its 5M: 1,000 loop steps of 4 environments x 250 vectorized steps.
Evaluation: 20 greedy episodes on fresh seeds every 100k environment steps; the final `test` row
is 20 more on seeds no evaluation used.
Expected (measured, seed 0): training episodes' mean return 0.42 under the random policy of
the first 10k steps, 1.39 at 350k; final test return 3.25 +- 0.43 over 20 greedy episodes
(episodes of 40.5 steps). The MinAtar paper trains 5M frames; this is a fifth of its budget, so
its curves are not a like-for-like reference.
Runtime: 27 min wall (1M environment steps, ~620 steps/s) at load average 14-25 on 2 CPU cores
shared with other jobs. At load 1-2, the first 40k environment steps ran 1,570 steps/s (35 s
wall with a 1.6 s compile, 2026-12-05), so ~11 min for the 1M (an extrapolation, not a run).
"""
import ml_collections

from research import config as config_lib


def get_config():
  config = config_lib.rl_base()
  config.env.name = 'Breakout-MinAtar'
  config.env.num_envs = 4
  config.model = ml_collections.ConfigDict(dict(name='cnn', variant='minatar'))
  config.loss = 'huber'
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 2.5e-4
  config.optimizer.args = ('decay=0.95', 'eps=0.01', 'centered=True')
  config.batch_size = 32
  config.dqn.rollout_length = 250
  config.dqn.replay_size = 100_000
  config.dqn.learning_starts = 5_000
  config.dqn.train_every = 4
  config.dqn.target_update_every = 1_000
  config.dqn.epsilon_end = 0.1
  config.dqn.epsilon_decay_steps = 100_000
  config.env.eval_episodes = 20
  config.total_steps = 1_000
  config.eval_every = 100
  config.checkpoint_every = 100
  config.log_every = 10
  return config
