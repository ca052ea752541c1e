"""The regression task: losses on real targets, metrics counted once per example in the data's
units, standardization fitted on the training split only, and its bad input through the CLI."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

import research
from research import config as config_lib, data
from research.core import losses, tasks
from research.errors import UserError
from research.run import train

from conftest import assert_usage_error, run_cli


def _split(handle, split: str) -> tuple[np.ndarray, np.ndarray]:
  examples = data.split_examples(handle, split, 64)
  return examples['input'], examples['target']


@pytest.fixture(scope='module')
def diabetes_run(tmp_path_factory, data_dir):
  """configs/diabetes_mlp.py for 30 steps, evaluated in batches of 32: the 89 test examples end
  in a padded batch of 25."""
  config = config_lib.load('configs/diabetes_mlp.py')
  config.dataset.data_dir, config.total_steps, config.eval_every = data_dir, 30, 30
  config.eval_batch_size, config.progress = 32, 'none'
  workdir = str(tmp_path_factory.mktemp('diabetes') / 'run')
  return workdir, train.train_and_evaluate(config, workdir)


def test_regression_sums_count_each_real_example_once():
  task = tasks.Task('regression', scale=tasks.regression.Scale(mean=10.0, std=2.0))
  target = np.array([[12.0, 8.0], [10.0, 14.0], [99.0, 99.0]], np.float32)
  batch = {'input': jnp.zeros((3, 4)), 'target': jnp.asarray(target),
           'mask': jnp.array([True, True, False])}
  _, prepared = task.prepare(batch, None)
  np.testing.assert_allclose(prepared['labels'][:2], (target[:2] - 10.0) / 2.0)
  outputs = jnp.array([[1.0, -1.0], [0.5, 1.0], [50.0, 50.0]])  # Standardized predictions.
  loss, sums = task.loss_and_sums(losses.get('mse', task='regression'), outputs, prepared)
  means = task.summarize(jax.device_get(sums))
  predicted = np.asarray(outputs[:2]) * 2.0 + 10.0  # In the data's units.
  assert means['count'] == 2
  assert means['mse'] == pytest.approx(sk_metrics.mean_squared_error(target[:2], predicted))
  assert means['mae'] == pytest.approx(sk_metrics.mean_absolute_error(target[:2], predicted))
  assert means['rmse'] == pytest.approx(np.sqrt(means['mse']))
  assert means['r2'] == pytest.approx(sk_metrics.r2_score(target[:2].ravel(), predicted.ravel()))
  assert float(loss) == pytest.approx(means['mse'] / 4.0)  # MSE on standardized targets.
  assert 'accuracy' not in means and '_z' not in means


def test_regression_losses_on_real_targets():
  pred, target = jnp.array([[0.0, 3.0]]), jnp.array([[0.5, 0.0]])
  assert float(losses.get('mse', task='regression')(pred, target)[0]) == pytest.approx(4.625)
  assert float(losses.get('mae', task='regression')(pred, target)[0]) == pytest.approx(1.75)
  # Huber (delta 1): 0.5 * 0.5² inside, 1 * (3 - 0.5) beyond; mean of the two.
  assert float(losses.get('huber', task='regression')(pred, target)[0]) == pytest.approx(
      (0.125 + 2.5) / 2)
  with pytest.raises(UserError, match="'cross_entropy' is a classification loss.*mse, mae, huber"):
    losses.get('cross_entropy', task='regression')
  with pytest.raises(UserError, match="'huber' is a regression loss"):
    losses.get('huber', task='classification')


def test_evaluation_matches_sklearn_metrics_on_every_example(diabetes_run):
  workdir, summary = diabetes_run
  run = research.load_run(workdir)
  inputs, targets = _split(run.dataset, 'test')
  assert len(targets) == 89 and summary['final']['test']['count'] == 89
  predicted = run.predict(inputs)
  assert predicted.shape == targets.shape == (89,)
  test = summary['final']['test']
  assert test['rmse'] == pytest.approx(np.sqrt(sk_metrics.mean_squared_error(targets, predicted)),
                                       rel=1e-4)
  assert test['mae'] == pytest.approx(sk_metrics.mean_absolute_error(targets, predicted), rel=1e-4)
  assert test['r2'] == pytest.approx(sk_metrics.r2_score(targets, predicted), abs=1e-4)
  assert set(summary['train_validation_gap']) == {'loss', 'rmse'}
  assert summary['train_validation_gap']['rmse'] == pytest.approx(
      summary['final']['validation']['rmse'] - summary['final']['train']['rmse'])


def test_standardization_is_fitted_on_the_training_split_only(diabetes_run):
  workdir, _ = diabetes_run
  run = research.load_run(workdir)
  record = json.loads((pathlib.Path(workdir) / 'dataset.json').read_text())
  train_targets = _split(run.dataset, 'train')[1].astype(np.float64)
  everything = np.concatenate([_split(run.dataset, s)[1] for s in ('train', 'validation', 'test')])
  mean, std = record['target_scale']
  assert len(train_targets) == run.dataset.info.split_sizes['train'] == 300
  assert (mean, std) == pytest.approx((train_targets.mean(), train_targets.std()), rel=1e-6)
  assert mean != pytest.approx(everything.mean(), rel=1e-4)
  assert tuple(record['target_shape']) == ()


@pytest.mark.parametrize('args, needles', [
    (['--config.dataset.name=digits'], ['needs a dataset with a real-valued target',
                                        "'digits' has 10-class labels"]),
    (['--config.loss=cross_entropy'], ["config.loss='cross_entropy' is a classification loss",
                                       'allows mse, mae, huber']),
    (['--config.task=classification'], ["task='classification' needs labels or tokens",
                                        "use task='regression'"]),
])
def test_bad_regression_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, needles):
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', 'configs/diabetes_mlp.py', *args, '--workdir',
                   str(workdir))
  assert_usage_error(result, *needles)
  assert not workdir.exists()
