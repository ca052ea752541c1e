"""TFDS builders `sunspots` and `stocks/<ticker>`: real time series that ship in PyPI packages.

- `sunspots`: statsmodels' yearly mean sunspot numbers, 1700-2008 (309 values; the ~11-year
  solar cycle with irregular amplitude: real noise, no smoothing).
- `stocks/aapl`, `stocks/amzn`, `stocks/goog`, `stocks/ibm`, `stocks/msft`: vega_datasets'
  monthly closing prices, January 2000 - March 2010 (123 months each; GOOG from August 2004,
  68 months). Near random walks: the naive last-value forecast is the one to beat.

Each record is one time step, {'time': year (fractional for months), 'value': float32}, written in
time order (`disable_shuffling`). The splits are consecutive stretches of time, never a random
draw: the first 60% of the steps are `train`, the next 20% `validation`, the last 20% `test`
(`time_splits`), so that a model is always evaluated on a future it has not seen.
research/data/series.py cuts each split into forecasting windows.
"""
import abc

import numpy as np
import tensorflow_datasets as tfds

from research.data import local_builder

# The shares of the series' steps held out at its end; changing them changes the data (bump the
# builders' versions).
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2
TICKERS = ('aapl', 'amzn', 'goog', 'ibm', 'msft')


def time_splits(num_steps: int) -> dict[str, range]:
  """{split: the step indices it holds}: train, validation and test in time order."""
  num_test = int(round(num_steps * TEST_FRACTION))
  num_validation = int(round(num_steps * VALIDATION_FRACTION))
  cut = num_steps - num_test - num_validation
  return {'train': range(0, cut), 'validation': range(cut, num_steps - num_test),
          'test': range(num_steps - num_test, num_steps)}


class SeriesBuilder(local_builder.LocalBuilder, skip_registration=True):
  """A series builder: `_series()` returns (times, values) in time order. Subclass it (with an
  `_info` from `_series_info`) to forecast a series of your own: any dataset whose features are
  exactly a scalar `time` and `value` is read as a series (research/data/encoding.py)."""

  disable_shuffling = True  # Records stay in time order.

  def _series_info(self, description: str, homepage: str) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=description,
        features=tfds.features.FeaturesDict({
            'time': tfds.features.Scalar(dtype=np.float64),
            'value': tfds.features.Scalar(dtype=np.float32),
        }),
        homepage=homepage)

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    times, values = self._series()
    return {split: self._steps(times, values, steps)
            for split, steps in time_splits(len(values)).items()}

  def _steps(self, times, values, steps):
    for i in steps:
      yield int(i), {'time': float(times[i]), 'value': np.float32(values[i])}

  @abc.abstractmethod
  def _series(self) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) of the whole series, in time order."""


class Sunspots(SeriesBuilder):
  """Yearly sunspot numbers 1700-2008 (statsmodels.datasets.sunspots)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: 185 / 62 / 62 years (train / validation / test).'}

  def _info(self) -> tfds.core.DatasetInfo:
    return self._series_info('Yearly mean sunspot numbers, 1700-2008, as statsmodels ships them.',
                             'https://www.statsmodels.org/stable/datasets/generated/sunspots.html')

  def _series(self):
    # Imported here: only preparing the data needs statsmodels.
    from statsmodels.datasets import sunspots  # pylint: disable=g-import-not-at-top
    frame = sunspots.load_pandas().data
    return frame['YEAR'].to_numpy(np.float64), frame['SUNACTIVITY'].to_numpy(np.float64)


class Stocks(SeriesBuilder):
  """Monthly closing prices of one ticker, 2000-2010 (vega_datasets' `stocks` table)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: one config per ticker, 60/20/20% in time.'}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=ticker, description=ticker.upper())
                     for ticker in TICKERS]

  def _info(self) -> tfds.core.DatasetInfo:
    return self._series_info('Monthly closing prices of AAPL, AMZN, GOOG, IBM and MSFT, '
                             '2000-2010, as the vega_datasets package bundles them.',
                             'https://github.com/altair-viz/vega_datasets')

  def _series(self):
    from vega_datasets import data  # pylint: disable=g-import-not-at-top
    frame = data.stocks()
    frame = frame[frame['symbol'] == self.builder_config.name.upper()].sort_values('date')
    dates = frame['date']
    return ((dates.dt.year + (dates.dt.month - 1) / 12.0).to_numpy(np.float64),
            frame['price'].to_numpy(np.float64))
