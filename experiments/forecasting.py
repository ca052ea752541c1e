"""Forecasting real series: MLP, GRU, WaveNet-style causal convolutions and a small Transformer
against the naive, seasonal-naive, drift, ARIMA and exponential-smoothing forecasts, on yearly
sunspots and four tickers' monthly stock prices, 5 seeds each.

Commands (from the repository root):
  research sweep experiments/forecasting.py --workdir workdirs/forecasting --jobs 2
  research report workdirs/forecasting
  python experiments/forecasting_table.py workdirs/forecasting   # + baselines, MASE, forecast plot

Setup: configs/forecast.py (12 past values -> the next 3, stride 1; Adam 1e-3, batch 32, 1,000
steps; nothing tuned on test). Each series is split in time (60% train / 20% validation / 20%
test) and windows lie inside one split, so the test windows are a rolling-origin evaluation: one
forecast origin per test step that leaves 3 steps after it (sunspots 48 origins, 1959-2006; each
ticker 11, 2008-2010). GOOG is left out: its 68 months give a 14-month test stretch, shorter than
one 15-step window (the runner refuses it with exit 2).

The sweep's own report has the models only (test RMSE and MAE, mean ± std over seeds 0..4). The
baselines are deterministic and need the whole series' history at each origin, which a sweep's
`references` (one number per table cell) cannot hold, so experiments/forecasting_table.py computes
them on the identical test windows, adds MASE (MAE / the in-sample naive one-step MAE of the
training stretch) for every row, and writes the combined table and the forecast plot.
Results: experiments/results/forecasting/README.md.
"""
from research.sweeps.spec import Metric, Sweep, axis, product

MODELS = {'MLP': 'mlp', 'GRU': 'gru', 'WaveNet': 'wavenet', 'Transformer': 'transformer'}
SERIES = {'sunspots': 'sunspots', 'AAPL': 'stocks/aapl', 'AMZN': 'stocks/amzn',
          'IBM': 'stocks/ibm', 'MSFT': 'stocks/msft'}


def get_sweep() -> Sweep:
  return Sweep(
      name='forecasting',
      base='configs/forecast.py',
      grid=product(
          axis('model', {label: f'configs/forecast.py:{name}' for label, name in MODELS.items()}),
          axis('series', {label: {'dataset.name': name} for label, name in SERIES.items()})),
      seeds=5,
      metrics=(Metric('test RMSE', 'final.test.rmse'), Metric('test MAE', 'final.test.mae')),
      rows=('model',), columns=('series',),
      curves=('rmse', 'loss'))
