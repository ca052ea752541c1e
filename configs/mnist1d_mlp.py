"""An MLP on the bundled MNIST-1D (4,000 train / 1,000 test sequences of length 40).

Command:
  research train --config configs/mnist1d_mlp.py --workdir workdirs/mnist1d_mlp
  (`:shuffled` runs the paper's variant with a fixed random permutation of the positions.)

The MNIST-1D paper's MLP baseline: hidden 100-100, ReLU, Adam lr 1e-2, batch 100, 6,000 steps
(Greydanus & Kobak report 68% test accuracy). 10% of train is carved out for validation.
Expected (measured, seed 0): test accuracy 0.664, validation 0.675, train 1.000 (it overfits).
Runtime: 25 s wall on 2 CPU cores (6,000 steps at ~720 steps/s; load average 7.5 before, 5.7
after: the machine was shared), including start-up.
"""
from research import config as config_lib


def get_config(arg=None):
  config = config_lib.base()
  config.dataset.name = config_lib.mnist1d_variant(arg, 'mnist1d_mlp')
  config.model.hidden_sizes = (100, 100)
  config.model.activation = 'relu'
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-2
  config.batch_size = 100
  config.total_steps = 6000
  config.eval_every = 500
  return config
