"""DQN (Mnih et al., 2015) on gymnax's CartPole-v1: an MLP Q-network, 10 environments in parallel.

Command:
  research train --config configs/dqn_cartpole.py --workdir workdirs/dqn_cartpole

500 loop steps of 1,000 environment steps each (10 environments x 100 vectorized steps per
compiled chunk) = 500k environment steps; replay 10k, batch 128, one Adam update every 10
environment steps after 10k, target network copied every 500 environment steps, ε 1 -> 0.05
over the first 250k steps, squared TD error, γ 0.99 (CleanRL's and purejaxrl's DQN settings for
CartPole). The paper's Huber loss (`--config.loss=huber`) diverged with these settings and Adam:
fitted to the same 10k random-policy transitions, Q grew past 3,000 within 30 target periods
(squared error: ~36, bounded by 1 / (1 - γ) = 100).
Evaluation: 100 greedy episodes on fresh seeds every 50k environment steps; the final `test` row
is 100 more on seeds no evaluation used.
Expected (measured, seed 0): validation return 291 at 50k steps, 490 at 200k, 500 +- 0 from 350k;
test return 500 +- 0 (100 episodes). 5 seeds: 496.3 +- 8.4, all >= 475 (experiments/results/dqn/).
Runtime (benchmarks/dqn_speed.py, 2 CPU cores, checkpoints, evaluations and metrics on): 19.4 s
wall on an idle machine (40,000 environment steps/s on one XLA:CPU thread, `cpu_threads` below;
0.9 s compile with the compilation cache warm; 24.8 s from an empty cache), 20.8 s with a thread
per core (36,000/s); 5 seeds as one vmapped group (`research sweep`, experiments/dqn.py) spread
over both cores (`dqn.group_devices` below) 53 s (59 s from an empty cache; 79 s on one device);
63-80 s for one seed at load 6-9.
"""
from research import config as config_lib


def get_config():
  config = config_lib.rl_base()
  config.env.name = 'CartPole-v1'
  config.env.num_envs = 10
  config.model.name = 'mlp'
  config.model.hidden_sizes = (120, 84)
  config.loss = 'mse'  # Huber (delta 1) with Adam diverged here: see the docstring.
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 2.5e-4
  config.batch_size = 128
  config.dqn.rollout_length = 100
  config.dqn.replay_size = 10_000
  config.dqn.learning_starts = 10_000
  config.dqn.train_every = 10
  config.dqn.target_update_every = 500
  config.dqn.epsilon_decay_steps = 250_000
  config.total_steps = 500
  config.eval_every = 50
  config.checkpoint_every = 50
  config.log_every = 10
  # One XLA:CPU thread: the chunk's many small kernels run faster than when handed between two
  # (40k against 36k environment steps/s idle; 30k against 23k at load ~5).
  config.cpu_threads = 1
  # A vectorized group of seeds (`research sweep`) runs a share of them on each core, as separate
  # programs with bit-identical results (5 seeds x 500k: 53 s against 79 s on one device, idle).
  config.dqn.group_devices = 2
  return config
