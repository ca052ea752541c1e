"""Forecasting windows cut from real series: splits in time that windows never cross, the
training stretch's scale, the baselines' MASE, and bad input (a window longer than a split, a
NaN in a series) through the CLI."""
import numpy as np
import pytest

from research import config as config_lib, data
from research.data import forecast_baselines, series, series_builders

from conftest import assert_usage_error, run_cli


@pytest.fixture(scope='module')
def sunspots(data_dir):
  config = config_lib.load('configs/forecast.py')
  config.dataset.data_dir = data_dir
  handle = data.open(config.dataset)
  builder = handle.prepared.builder
  return config, handle, {role: series.read_split('sunspots', builder, role)
                          for role in series.ROLES}


def test_splits_are_consecutive_stretches_of_time():
  splits = series_builders.time_splits(309)
  assert [len(splits[r]) for r in series.ROLES] == [185, 62, 62]
  assert splits['train'].stop == splits['validation'].start
  assert splits['validation'].stop == splits['test'].start == 247


def test_windows_never_cross_a_split_boundary(sunspots):
  config, handle, values = sunspots
  context, horizon = config.dataset.context_length, config.dataset.horizon
  mean, std = handle.info.target_scale
  for role in series.ROLES:
    examples = data.split_examples(handle, role, 16)
    inputs, targets = examples['input'] * std + mean, examples['target']
    stretch = values[role]
    assert len(targets) == len(stretch) - context - horizon + 1  # Stride 1: every origin.
    for k, (x, y) in enumerate(zip(inputs, targets)):
      # Window k is values k .. k + context + horizon - 1 of its own stretch, nothing beyond.
      np.testing.assert_allclose(np.concatenate([x, y]), stretch[k:k + context + horizon],
                                 rtol=1e-5, atol=1e-3)


def test_cut_respects_stride_and_stays_inside():
  windows = series.cut(np.arange(20.0), context=5, horizon=3, stride=4)
  np.testing.assert_array_equal(windows['input'][:, 0], [0, 4, 8, 12])
  assert windows['target'].max() == 19 and windows['target'].shape == (4, 3)
  assert len(series.cut(np.arange(7.0), 5, 3, 1)['input']) == 0


def test_scale_is_fitted_on_the_training_stretch_only(sunspots):
  _, handle, values = sunspots
  assert handle.info.target_scale == pytest.approx(
      (values['train'].mean(), values['train'].std()))
  assert handle.info.target_scale[0] != pytest.approx(np.concatenate(list(values.values())).mean())


def test_naive_forecast_has_mase_exactly_one_in_sample():
  rng = np.random.default_rng(0)
  train = np.cumsum(rng.normal(size=200)) + 50.0
  scale = forecast_baselines.naive_scale(train)
  forecasts = np.array([forecast_baselines.naive(train[:t], 1)[0] for t in range(1, len(train))])
  assert forecast_baselines.errors(train[1:], forecasts, scale)['mase'] == 1.0
  assert forecast_baselines.errors(train[1:], forecasts + 1.0, scale)['mase'] != 1.0


def test_baselines_forecast_from_the_history_before_each_origin():
  values = np.arange(40.0) % 10  # Period 10.
  forecasts = forecast_baselines.rolling_origin(values, np.array([30, 35]), 3, fit_end=30,
                                                period=10)
  np.testing.assert_array_equal(forecasts['naive'], [[9, 9, 9], [4, 4, 4]])
  np.testing.assert_array_equal(forecasts['seasonal naive'], [[0, 1, 2], [5, 6, 7]])
  np.testing.assert_allclose(forecasts['drift'][0], 9 + np.arange(1, 4) * 9 / 29)
  assert set(forecasts) == {'naive', 'seasonal naive', 'drift', 'ARIMA', 'exp. smoothing'}


def test_a_window_longer_than_a_split_exits_2(tmp_path):
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', 'configs/forecast.py', '--config.dataset.context_length=60',
                   '--workdir', str(workdir))
  assert_usage_error(result, 'dataset.context_length=60 + dataset.horizon=3 = 63 steps is longer than '
               "the validation split of 'sunspots' (62 steps)")
  assert not workdir.exists()


NAN_SERIES = '''
import numpy as np
import tensorflow_datasets as tfds

from research import config as config_lib
from research.data import series_builders


class NanSeries(series_builders.SeriesBuilder):
  """A sine wave with one missing value (NaN) at step 70."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'time': tfds.features.Scalar(dtype=np.float64),
        'value': tfds.features.Scalar(dtype=np.float32)}))

  def _series(self):
    values = np.sin(np.arange(100.0))
    values[70] = np.nan
    return np.arange(1900.0, 2000.0), values


def get_config():
  config = config_lib.load('configs/forecast.py')
  config.dataset.name = 'nan_series'
  config.dataset.download = True  # Prepared here from the class above.
  return config
'''


def test_a_nan_in_a_series_exits_2(tmp_path):
  config = tmp_path / 'nan_series.py'
  config.write_text(NAN_SERIES)
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', str(config), '--workdir', str(workdir))
  assert_usage_error(result, "dataset 'nan_series': split 'validation' has 1 missing or non-finite",
               'at time 1970')
  assert not workdir.exists()
