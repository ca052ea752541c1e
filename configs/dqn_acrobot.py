"""DQN on gymnax's Acrobot-v1 (swing the two-link arm's tip above the bar; -1 per step, at most
500 steps): the CartPole settings of configs/dqn_cartpole.py, unchanged but for the environment.

Command:
  research train --config configs/dqn_acrobot.py --workdir workdirs/dqn_acrobot

500 loop steps x 1,000 environment steps = 500k; MLP 120-84, replay 10k, batch 128, Adam 2.5e-4,
an update every 10 environment steps after 10k, target copied every 500, ε 1 -> 0.05 over 250k,
squared TD error, γ 0.99: CleanRL's dqn_jax.py settings, whose Acrobot-v1 run (seed 1, 500k
steps) reports -91.4 +- 14.8 (huggingface.co/cleanrl/Acrobot-v1-dqn_jax-seed1).
Expected (measured, 5 seeds in experiments/dqn.py): greedy return -90.4 +- 6.5 at 100k steps,
-85.3 +- 2.6 at 500k; final test -83.7 +- 3.6 (100 episodes per seed).
Runtime: ~20 s wall for one seed on 2 idle CPU cores (one XLA:CPU thread, as the CartPole
config: 36,000 environment steps/s measured over 100k steps, load ~1); 204 s for 5 vmapped seeds
at load average ~9.
"""
import pathlib

from research import config as config_lib


def get_config():
  # The same settings: configs/dqn_cartpole.py is their one source.
  config = config_lib.load(str(pathlib.Path(__file__).with_name('dqn_cartpole.py')))
  config.env.name = 'Acrobot-v1'
  return config
