"""The seed's network (MLP 128-64, ReLU) on the bundled `digits` set (1,797 real 8x8 digits).

Command:
  research train --config configs/default.py --workdir workdirs/default

Trains on 1,293 images, validates on 144 and tests on 360 (scikit-learn's digits, split once and
for all by the bundled TFDS builder): Adam 1e-3, batch 64, 30 epochs (600 steps).
Expected (measured, seed 0): test accuracy 0.981, validation 0.972, train 0.996.
Runtime: ~5 s on 2 CPU cores (about 3 s of training at ~650 steps/s, plus start-up; the first
run also prepares the dataset, a few seconds more).
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
