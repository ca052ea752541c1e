"""DQN learning curves: CartPole-v1 and Acrobot-v1, DQN and Double DQN, 5 seeds each, every
point's 5 seeds trained as one vmapped program (research/run/agent.py).

Commands:
  research sweep experiments/dqn.py --workdir workdirs/dqn --jobs 1
  research report workdirs/dqn
  python experiments/dqn_table.py workdirs/dqn > experiments/results/dqn/README.md

Setup: configs/dqn_cartpole.py and configs/dqn_acrobot.py as they are (500k environment steps,
10 environments, replay 10k, batch 128, Adam 2.5e-4, target copied every 500 environment steps,
ε 1 -> 0.05 over 250k, squared TD error); `dqn.double=True` for the Double DQN rows. Every 50k
environment steps 100 greedy episodes on fresh seeds (the `validation` rows); at the end 100 more
on seeds no evaluation used (`test`: the table's metric). experiments/dqn_table.py reads the
validation rows at fixed environment-step budgets (mean ± std over seeds) from the runs' metrics.
Expected (measured, final test return, mean ± sample std over 5 seeds): CartPole-v1 DQN
496.3 ± 8.4, Double DQN 500.0 ± 0.0 (5/5 seeds >= 475 in both); Acrobot-v1 DQN -83.7 ± 3.6,
Double DQN -85.4 ± 3.1 (CleanRL, same settings: -91.4 ± 14.8).
Runtime: 886 s with --jobs 1 (4 vectorized groups, 180-294 s each) on 2 CPU cores at load 7-10.
Table and curves: experiments/results/dqn/README.md.
"""
from research.sweeps.spec import Metric, Sweep, axis, product

# Published DQN at 500k steps, the same settings (CleanRL dqn_jax.py, seed 1, on Hugging Face):
# CartPole-v1's "solved" level is 475.
REFERENCES = {('CartPole-v1', 'DQN'): 475.0, ('Acrobot-v1', 'DQN'): -91.4}


def get_sweep() -> Sweep:
  return Sweep(
      name='dqn',
      base='configs/dqn_cartpole.py',
      grid=product(
          axis('env', {'CartPole-v1': 'configs/dqn_cartpole.py',
                       'Acrobot-v1': 'configs/dqn_acrobot.py'}),
          axis('variant', {'DQN': {'dqn.double': False}, 'Double DQN': {'dqn.double': True}})),
      seeds=5,
      overrides={'progress': 'none'},
      metrics=(Metric('test return', 'final.test.return'),
               Metric('env steps/s', 'env_steps_per_second')),
      rows=('env',), columns=('variant',),
      references=REFERENCES, reference_name='published / solved',
      curves=('return',))
