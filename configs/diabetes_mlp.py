"""An MLP regressor on scikit-learn's diabetes data (disease progression from 10 variables).

Command:
  research train --config configs/diabetes_mlp.py --workdir workdirs/diabetes_mlp

The seed's MSE loss on a real-valued target (task='regression'): 10 -> 32 -> 1 with ReLU, Adam
lr 1e-3 with weight decay, batch 32. Targets are standardized with the training split's mean and
standard deviation (recorded in the workdir's dataset.json); the reported mse, rmse and mae are in
the target's own units. Split: a fixed seeded 20% test holdout (89 patients), 15% of the rest for
validation (53), 300 for training.
Expected (measured, seed 0): test rmse 53.41, mae 43.06, r2 0.515; validation rmse 58.10; train
rmse 50.02 (disease-progression units; the target's train std is ~77).
Runtime: 11.5 s wall on 2 shared CPU cores (1,500 steps at ~800 steps/s), including start-up.
Beside scikit-learn's LinearRegression and HistGradientBoostingRegressor on the identical split:
benchmarks/diabetes_regression.py.
"""
from research import config as config_lib


def get_config():
  config = config_lib.base()
  config.dataset.name = 'diabetes'
  config.dataset.validation_fraction = 0.15
  config.task = 'regression'
  config.loss = 'mse'
  config.model.hidden_sizes = (32,)
  config.model.activation = 'relu'
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 1e-2
  config.batch_size = 32
  config.total_steps = 1500
  config.eval_every = 150
  config.early_stopping.metric = 'rmse'
  return config
