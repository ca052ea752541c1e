"""The forecasting table: the sweep's models (experiments/forecasting.py) and the statistical
baselines (research/data/forecast_baselines.py) on the identical test windows, with MAE, RMSE and
MASE; and a plot of forecasts against the truth for a few test windows.

  python experiments/forecasting_table.py workdirs/forecasting

Reads the sweep's summaries (nothing is retrained); the baselines are computed here from each
series' prepared data (the data_dir the runs recorded), at the runs' own forecast origins, whose
targets are checked to equal the test windows the runs were scored on. Writes
DIR/forecasting_table.md and DIR/plots/forecasts.png.
"""
import pathlib
import sys
import time

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

import research
from research import config as config_lib, data
from research.data import forecast_baselines, series
from research.rundir import layout
from research.sweeps import grid

PERIODS = {'sunspots': 11}  # The ~11-year solar cycle; 12 months for the monthly prices.
METRICS = (('MASE', 'mase'), ('RMSE', 'rmse'), ('MAE', 'mae'))
PLOTTED = ('sunspots', 'MSFT')


def series_data(workdir: pathlib.Path) -> dict:
  """One run's series: every stretch's values, its test windows' origins and targets."""
  config = config_lib.from_stored(layout.config(workdir))
  handle = data.open(config.dataset)
  values = {role: series.read_split(config.dataset.name, handle.prepared.builder, role)
            for role in series.ROLES}
  full = np.concatenate([values[r] for r in series.ROLES])
  context, horizon = config.dataset.context_length, config.dataset.horizon
  test_start = len(values['train']) + len(values['validation'])
  examples = data.split_examples(handle, 'test', 64)
  targets, inputs = examples['target'].astype(np.float64), examples['input']
  origins = test_start + np.arange(len(targets)) * config.dataset.stride + context
  truth = np.stack([full[o:o + horizon] for o in origins])
  np.testing.assert_allclose(truth, targets, rtol=1e-6, atol=1e-3)  # The runs' own windows.
  return dict(full=full, train=values['train'], test_start=test_start, origins=origins,
              truth=truth, inputs=inputs, horizon=horizon, context=context)


def cell(values: list[float]) -> str:
  if len(values) == 1:
    return f'{values[0]:.3f}'
  return f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}'


def main(sweep_dir: str) -> int:
  start = time.time()
  root = pathlib.Path(sweep_dir)
  record, runs = grid.read_record(root)
  models = list(dict.fromkeys(r.labels['model'] for r in runs))
  names = list(dict.fromkeys(r.labels['series'] for r in runs))
  results, info, baselines = {}, {}, {}
  for name in names:
    first = next(r for r in runs if r.labels['series'] == name)
    info[name] = got = series_data(root / first.name)
    scale = forecast_baselines.naive_scale(got['train'])
    forecasts = forecast_baselines.rolling_origin(
        got['full'], got['origins'], got['horizon'], got['test_start'], PERIODS.get(name, 12))
    baselines[name] = forecasts
    for method, forecast in forecasts.items():
      results[(method, name)] = [forecast_baselines.errors(got['truth'], forecast, scale)]
    for run in (r for r in runs if r.labels['series'] == name):
      summary = layout.summary(root / run.name)
      if summary is None:
        continue
      test = summary['final']['test']
      results.setdefault((run.labels['model'], name), []).append(
          {'mae': test['mae'], 'rmse': test['rmse'], 'mase': test['mae'] / scale})
  rows = models + list(next(iter(baselines.values())))
  origins = '; '.join(f"{n} {len(info[n]['origins'])}" for n in names)
  lines = [f"# {record['name']}: rolling-origin test forecasts (origins: {origins})", '']
  for title, key in METRICS:
    lines += [f'## test {title} (horizon {info[names[0]]["horizon"]}, lower is better; '
              'models: mean ± std over seeds)', '',
              '| model | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|']
    for row in rows:
      texts = []
      for name in names:
        values = [v[key] for v in results.get((row, name), [])]
        best = min(np.mean([v[key] for v in results[(r, name)]]) for r in rows
                   if results.get((r, name)))
        text = cell(values) if values else '—'
        texts.append(f'**{text}**' if values and np.mean(values) == best else text)
      lines.append(f'| {row} | ' + ' | '.join(texts) + ' |')
    lines.append('')
  lines.append('Bold: the lowest mean in each column. MASE: MAE / the in-sample MAE of the '
               'one-step naive forecast on the training stretch.')
  text = '\n'.join(lines) + '\n'
  (root / 'forecasting_table.md').write_text(text)
  print(text)
  plot(root, runs, info, baselines, models)
  print(f'{time.time() - start:.0f} s')
  return 0


def plot(root: pathlib.Path, runs, info: dict, baselines: dict, models: list[str]) -> None:
  """Truth and the 3-step forecasts of seed 0 of each model, naive and ARIMA, from a few origins
  spread over the test stretch of each plotted series."""
  shown = [n for n in PLOTTED if n in info]
  fig, axes = plt.subplots(len(shown), 1, figsize=(11, 4 * len(shown)), squeeze=False)
  for ax, name in zip(axes[:, 0], shown):
    got = info[name]
    picks = np.linspace(0, len(got['origins']) - 1, 4).round().astype(int)
    steps = np.arange(got['test_start'] - got['context'], len(got['full']))
    ax.plot(steps, got['full'][steps], color='black', lw=1.5, label='truth')
    ax.axvline(got['test_start'], color='grey', ls=':', lw=1)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, model in enumerate(models):
      run = next(r for r in runs if r.seed == 0 and r.labels['model'] == model
                 and r.labels['series'] == name)
      predicted = research.load_run(str(root / run.name)).predict(got['inputs'][picks])
      for j, k in enumerate(picks):
        horizon = got['origins'][k] + np.arange(got['horizon'])
        ax.plot(horizon, predicted[j], color=colors[i], marker='o', ms=3,
                label=model if j == 0 else None)
    for style, method in (('--', 'naive'), ('-.', 'ARIMA')):
      for j, k in enumerate(picks):
        horizon = got['origins'][k] + np.arange(got['horizon'])
        ax.plot(horizon, baselines[name][method][k], color='grey', ls=style,
                label=method if j == 0 else None)
    ax.set_title(f'{name}: forecasts from {len(picks)} test origins (test starts at the dotted '
                 'line; x: step of the series)')
    ax.legend(fontsize=8, ncol=4)
  fig.tight_layout()
  (root / 'plots').mkdir(exist_ok=True)
  fig.savefig(root / 'plots' / 'forecasts.png', dpi=100)


if __name__ == '__main__':
  sys.exit(main(sys.argv[1]))
