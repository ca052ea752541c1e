"""Multi-step forecasting of a real series: `dataset.context_length` past values in, the next
`dataset.horizon` values out (task='regression', MSE on standardized values).

Command:
  research train --config configs/forecast.py[:mlp|gru|wavenet|transformer] --workdir workdirs/forecast
  (--config.dataset.name=stocks/msft etc. for the monthly stock prices; default: yearly sunspots)

Data: the series is split in time (first 60% train, next 20% validation, last 20% test; see
research/data/series_builders.py) and each split is cut into its own windows of 12 values -> the
next 3 (stride 1), so no window straddles a boundary; inputs and targets are standardized with the
training stretch's mean and std, and rmse/mae are reported in the series' units. Models over the
window: an MLP (12 -> 64 -> 64 -> 3), a one-layer GRU (32 units, last state), WaveNet-style
causal convolutions (16 channels, dilations 1..8, last frame), and a small Transformer (ViT with
1-step patches: 2 blocks of width 32). Adam lr 1e-3, batch 32, 1,000 steps.
Expected (measured, seed 0, sunspots, 48 test windows; sunspot-number units): test rmse
  mlp 41.98 (r2 0.19), gru 43.51 (0.13), wavenet 34.36 (0.46), transformer 45.75 (0.04).
Runtime: 10 s (mlp, gru), 13 s (wavenet), 19 s (transformer) wall each on 2 shared CPU cores,
including start-up.
The full table, with naive / seasonal naive / drift / ARIMA / exponential-smoothing baselines on
the same test windows: experiments/forecasting.py and experiments/results/forecasting/.
"""
import ml_collections

from research import config as config_lib
from research.errors import unknown

MODELS = {
    'mlp': dict(name='mlp', hidden_sizes=(64, 64), activation='relu'),
    'gru': dict(name='gru', hidden_size=32, bidirectional=False, readout='last'),
    'wavenet': dict(name='wavenet', channels=16, skip_channels=16, kernel_size=2, num_blocks=1,
                    layers_per_block=4, pool='last'),
    'transformer': dict(name='vit', patch_size=1, hidden_size=32, depth=2, num_heads=4,
                        mlp_dim=64, pooling='mean'),
}


def get_config(arg=None):
  model = arg or 'mlp'
  if model not in MODELS:
    raise unknown('variant of configs/forecast.py', model, MODELS)
  config = config_lib.base()
  config.dataset.name = 'sunspots'
  config.dataset.context_length = 12
  config.dataset.horizon = 3
  config.dataset.stride = 1
  config.task = 'regression'
  config.loss = 'mse'
  config.model = ml_collections.ConfigDict(MODELS[model])
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 32
  config.total_steps = 1000
  config.eval_every = 250
  config.early_stopping.metric = 'rmse'
  return config
