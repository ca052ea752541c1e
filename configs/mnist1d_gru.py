"""The MNIST-1D paper's GRU baseline (bidirectional, hidden 6, readout from all 40 steps).

Commands:
  research train --config configs/mnist1d_gru.py --workdir workdirs/mnist1d_gru
  research train --config configs/mnist1d_gru.py:shuffled --workdir workdirs/mnist1d_gru_shuf

Adam 1e-2, batch 100, 6,000 steps, as in the paper (which reports 91%, and 57% shuffled).
5,110 parameters (PyTorch's nn.GRU has 24 redundant biases more: 5,134).
Expected (measured): test accuracy 0.902 (validation 0.903, train 0.997), seed 0; the paper reports 91%.
Runtime: ~48 s (6,000 steps at ~220 steps/s) on 2 CPU cores, measured while the machine was shared.
"""
import ml_collections

from research import config as config_lib

def get_config(arg=None):
  config = config_lib.base()
  config.dataset.name = config_lib.mnist1d_variant(arg, 'mnist1d_gru')
  config.model = ml_collections.ConfigDict(dict(
      name='gru', hidden_size=6, bidirectional=True, num_layers=1, readout='all',
      dropout_rate=0.0, weight_init='flax'))
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-2
  config.batch_size = 100
  config.total_steps = 6000
  config.eval_every = 500
  return config
