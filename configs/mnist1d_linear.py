"""Logistic regression on the bundled MNIST-1D: the MNIST-1D paper's linear baseline.

Commands:
  research train --config configs/mnist1d_linear.py --workdir workdirs/mnist1d_linear
  research train --config configs/mnist1d_linear.py:shuffled --workdir workdirs/mnist1d_linear_shuf
      (the variant with a fixed random permutation of the positions: a linear model cannot tell)

One Dense layer from the 40 inputs to the 10 classes (410 parameters), trained with the MLP's
recipe (configs/mnist1d_mlp.py: Adam lr 1e-2, batch 100, 6,000 steps), as in the paper
(Greydanus & Kobak report 32% test accuracy, shuffled or not).
Expected (measured): test accuracy 0.318 ± 0.012 over seeds 0-4 (seed 0: 0.300, validation 0.330,
train 0.371); about the same on :shuffled (seed 0: 0.299, validation 0.325, train 0.371).
Runtime: 47 s wall (6,000 steps at ~540 steps/s) on 2 CPU cores (load average 8.5 before, 7.5
after: the machine was shared); 22-27 s for seeds 1-4 and :shuffled at load 3.2-5.8.
"""
import pathlib

import ml_collections

from research import config as config_lib


def get_config(arg=None):
  config_lib.mnist1d_variant(arg, 'mnist1d_linear')  # Checks the argument, naming this file.
  mlp = pathlib.Path(__file__).with_name('mnist1d_mlp.py')
  config = config_lib.load(f'{mlp}:{arg}' if arg else str(mlp))
  config.model = ml_collections.ConfigDict(dict(name='linear'))
  return config
