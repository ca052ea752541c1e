"""A hyper-parameter search (Optuna) for the MNIST-1D paper's CNN: learning rate, weight decay and
width (channels of each of the three conv layers), chosen on validation accuracy, against the
hand-set config (configs/mnist1d_cnn.py: Adam lr 1e-2, no weight decay, 25 channels), which is
the search's first trial (`baseline`) so that both are measured the same way.

Commands:
  research sweep experiments/mnist1d_cnn_search.py --workdir workdirs/mnist1d_cnn_search --jobs 2
  research report workdirs/mnist1d_cnn_search

Setup: 40 trials of 3,000 steps (half the config's 6,000, to fit the machine), validation every
250 steps on the config's 10% holdout (400 sequences); TPE (seed 0) after 8 random trials; the
median pruner stops a trial whose validation accuracy at an evaluation is below the median of
the earlier trials at that step (after 8 trials). Two workers share the study
(study.journal); which trial sees which history depends on timing, so a rerun samples
differently. Test accuracy is read only for the trial chosen on validation.
Expected and runtime: experiments/results/mnist1d_cnn_search/README.md.
"""
from research import config as config_lib
from research.sweeps.spec import Search, integer, log_uniform, uniform


def get_config():
  """configs/mnist1d_cnn.py with its width as a key the search can set (25 = its default)."""
  config = config_lib.load('configs/mnist1d_cnn.py')
  config.model.channels = 25
  return config


def get_sweep() -> Search:
  return Search(
      name='mnist1d_cnn_search',
      base='experiments/mnist1d_cnn_search.py',
      space={'optimizer.learning_rate': log_uniform(1e-4, 1e-1),
             'optimizer.weight_decay': uniform(0.0, 5e-4),
             'model.channels': integer(8, 64, log=True)},
      baseline={'optimizer.learning_rate': 1e-2, 'optimizer.weight_decay': 0.0,
                'model.channels': 25},
      trials=40, metric='accuracy', direction='maximize', sampler='tpe', pruner='median',
      startup_trials=8, overrides={'total_steps': 3000, 'eval_every': 250},
      test_metric='final.test.accuracy')
