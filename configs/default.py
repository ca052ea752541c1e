"""The seed's network (MLP 128-64, ReLU) on the bundled `digits` set (1,797 real 8x8 digits).

Command:
  research train --config configs/default.py --workdir workdirs/default

Trains on 1,293 images, validates on 144 and tests on 360 (scikit-learn's digits, split once and
for all by the bundled TFDS builder): Adam 1e-3, batch 64, 30 epochs (600 steps).
Expected (measured, seed 0): test accuracy 0.981, validation 0.972, train 0.996.
Runtime: 15 s wall on 2 CPU cores (load average 5.0 before, 4.1 after: the machine was shared;
600 steps at ~220 steps/s, plus start-up), 51 s in a run at load 2.8 → 7.2 (~110 steps/s); the
first run also prepares the dataset, a few seconds more.
"""
from research import config as config_lib


def get_config():
  config = config_lib.base()
  config.dataset.name = 'digits'
  config.model.hidden_sizes = (128, 64)
  config.model.activation = 'relu'
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 64
  config.num_epochs = 30
  return config
