"""Statistical forecasts of a series from its own history, and the errors they are scored by.

The baselines a learned forecaster has to beat, evaluated on the very windows the runner tests
(research/data/series.py): at each forecast origin t (the step after a test window's context),
each method sees the series up to t - 1 and forecasts the next `horizon` values.

  naive            every step: the last value y_{t-1}
  seasonal naive   the value one season (`period` steps) before each forecast step
  drift            the last value plus h times the average step of the history so far
  ARIMA            statsmodels' ARIMA, its (p, d, q) chosen by AIC on train + validation
  exp. smoothing   statsmodels' state-space exponential smoothing with a damped additive trend

ARIMA and exponential smoothing are fitted once, on the training and validation stretches (never
on test values); at each origin the fitted parameters are applied to the history up to it (a
rolling origin without refitting), as a deployed model would be. Errors: MAE, RMSE and MASE, the
MAE divided by the in-sample MAE of the one-step naive forecast on the training stretch
(Hyndman & Koehler 2006), so that MASE < 1 beats the naive forecast's typical training error.
"""
import itertools
import warnings

import numpy as np

ARIMA_ORDERS = tuple(itertools.product((0, 1, 2), (0, 1), (0, 1)))


def naive_scale(train: np.ndarray) -> float:
  """The in-sample MAE of the one-step naive forecast: mean |y_t - y_{t-1}| over `train`."""
  return float(np.mean(np.abs(np.diff(np.asarray(train, np.float64)))))


def errors(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
  """MAE, RMSE and MASE (MAE / `scale`) over every forecast value."""
  error = np.asarray(forecast, np.float64) - np.asarray(actual, np.float64)
  mae = float(np.mean(np.abs(error)))
  return {'mae': mae, 'rmse': float(np.sqrt(np.mean(np.square(error)))), 'mase': mae / scale}


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
  return np.full(horizon, history[-1], np.float64)


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
  steps = np.arange(1, horizon + 1)
  return history[len(history) - period + (steps - 1) % period]


def drift(history: np.ndarray, horizon: int) -> np.ndarray:
  slope = (history[-1] - history[0]) / max(1, len(history) - 1)
  return history[-1] + slope * np.arange(1, horizon + 1)


class _Fitted:
  """A statsmodels state-space model fitted on the history before the first origin."""

  def __init__(self, results):
    self.results = results

  def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      return np.asarray(self.results.apply(history).forecast(horizon), np.float64)


def fit_arima(fit_values: np.ndarray) -> _Fitted:
  """ARIMA(p, d, q) with the lowest AIC over ARIMA_ORDERS (a constant when d = 0)."""
  from statsmodels.tsa.arima.model import ARIMA  # pylint: disable=g-import-not-at-top
  best = None
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    for p, d, q in ARIMA_ORDERS:
      results = ARIMA(fit_values, order=(p, d, q), trend='c' if d == 0 else 'n').fit()
      if best is None or results.aic < best.aic:
        best = results
  return _Fitted(best)


def fit_exponential_smoothing(fit_values: np.ndarray) -> _Fitted:
  from statsmodels.tsa.statespace.exponential_smoothing import (  # pylint: disable=g-import-not-at-top
      ExponentialSmoothing)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    return _Fitted(ExponentialSmoothing(fit_values, trend=True, damped_trend=True).fit(disp=False))


def rolling_origin(values: np.ndarray, origins: np.ndarray, horizon: int, fit_end: int,
                   period: int) -> dict[str, np.ndarray]:
  """{method: forecasts [len(origins), horizon]} from each origin of `values` (the whole series
  in time order); the fitted methods learn their parameters on values[:fit_end] only."""
  values = np.asarray(values, np.float64)
  fitted = {'ARIMA': fit_arima(values[:fit_end]),
            'exp. smoothing': fit_exponential_smoothing(values[:fit_end])}
  methods = {'naive': naive, 'seasonal naive': lambda h, n: seasonal_naive(h, n, period),
             'drift': drift, **fitted}
  return {name: np.stack([method(values[:origin], horizon) for origin in origins])
          for name, method in methods.items()}
