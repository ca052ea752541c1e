"""configs/diabetes_mlp.py beside scikit-learn's LinearRegression and HistGradientBoostingRegressor,
all on the identical split of the bundled `diabetes` dataset (train 300 / validation 53 / test 89).

The scikit-learn models read the very batches the runner evaluates (`research.data.eval_batches`,
padding dropped), fit on the training split only, and are scored on the test split; the MLP is the
config trained with `research.run.train.train_and_evaluate` for seeds 0..4 (mean ± std). Test
RMSE, MAE (in the target's units) and R²; nothing here is typed in.

  TFDS_DATA_DIR=/tmp/tfds_regression .venv/bin/python benchmarks/diabetes_regression.py
"""
import pathlib
import sys
import tempfile
import time

import numpy as np
from sklearn import ensemble, linear_model, metrics

from research import config as config_lib, data
from research.run import train

CONFIG = 'configs/diabetes_mlp.py'
SEEDS = range(5)


def split_arrays(handle, split: str) -> tuple[np.ndarray, np.ndarray]:
  examples = data.split_examples(handle, split)
  return examples['input'], examples['target']


def scores(y, prediction) -> dict:
  return {'rmse': float(np.sqrt(metrics.mean_squared_error(y, prediction))),
          'mae': float(metrics.mean_absolute_error(y, prediction)),
          'r2': float(metrics.r2_score(y, prediction))}


def main() -> int:
  start = time.time()
  config = config_lib.load(CONFIG)
  handle = data.open(config.dataset)
  (x_train, y_train), (x_test, y_test) = (split_arrays(handle, s) for s in ('train', 'test'))
  rows = {}
  for name, model in (('LinearRegression', linear_model.LinearRegression()),
                      ('HistGradientBoostingRegressor',
                       ensemble.HistGradientBoostingRegressor(random_state=0))):
    rows[name] = [scores(y_test, model.fit(x_train, y_train).predict(x_test))]
  mlp = []
  with tempfile.TemporaryDirectory() as tmp:
    for seed in SEEDS:
      config.seed, config.progress = seed, 'none'
      summary = train.train_and_evaluate(config, str(pathlib.Path(tmp) / f'seed{seed}'))
      mlp.append({k: summary['final']['test'][k] for k in ('rmse', 'mae', 'r2')})
  rows[f'MLP ({CONFIG}, {len(mlp)} seeds)'] = mlp
  print(f'diabetes: train {len(y_train)} / test {len(y_test)} examples (validation '
        f"{handle.info.split_sizes['validation']}, used by the MLP's evaluations only)\n")
  print('| model | test RMSE | test MAE | test R² |\n|---|---|---|---|')
  for name, values in rows.items():
    cells = []
    for key in ('rmse', 'mae', 'r2'):
      column = np.asarray([v[key] for v in values])
      cells.append(f'{column.mean():.2f}' + (f' ± {column.std(ddof=1):.2f}'
                                             if len(column) > 1 else ''))
    print(f"| {name} | {' | '.join(cells)} |")
  print(f'\n{time.time() - start:.0f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
