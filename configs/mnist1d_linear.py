"""Logistic regression on the bundled MNIST-1D: the MNIST-1D paper's linear baseline.

Commands:
  research train --config configs/mnist1d_linear.py --workdir workdirs/mnist1d_linear
  research train --config configs/mnist1d_linear.py:shuffled --workdir workdirs/mnist1d_linear_shuf
      (the variant with a fixed random permutation of the positions: a linear model cannot tell)

One Dense layer from the 40 inputs to the 10 classes (410 parameters); Adam lr 1e-2, batch 100,
6,000 steps, as in the paper (Greydanus & Kobak report 32% test accuracy, shuffled or not).
Expected (measured): see experiments/results/mnist1d_baselines/.
"""
import ml_collections

from research import config as config_lib


def get_config(arg=None):
  config = config_lib.base()
  config.dataset.name = config_lib.mnist1d_variant(arg, 'mnist1d_linear')
  config.model = ml_collections.ConfigDict(dict(name='linear'))
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-2
  config.batch_size = 100
  config.total_steps = 6000
  config.eval_every = 500
  return config
