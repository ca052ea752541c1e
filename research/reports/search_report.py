"""`research report DIR` of a hyper-parameter search (research/sweeps/search.py): DIR/report.md
with the trials by state, the compute pruning saved, the best trials, the parameter importances
(Optuna's fANOVA), the chosen trial and, only then, its test metric; plots/ with the optimization
history and the parallel-coordinate plot. Works while workers still run (it reads the study).

The chosen trial is the best on the validation metric; its test metric is printed below that
choice and is never used to make it. The baseline (the experiment's hand-set point, trial 0
when given) is shown beside it on both.
"""
import json
import pathlib
import warnings

from research.errors import UserError
from research.rundir import layout
from research.sweeps import search as search_lib


def _value(v) -> str:
  if isinstance(v, float):
    return f'{v:.4g}'
  return str(v)


def _steps(trial) -> tuple[int, int]:
  """(steps trained, steps the full run would train) of a finished or pruned trial."""
  steps = trial.user_attrs.get('steps') or 0
  total = trial.user_attrs.get('total_steps') or steps
  return steps, total


def compute_saved(trials) -> dict:
  """Steps trained, steps pruning saved (what pruned trials would still have trained)."""
  ended = [t for t in trials if t.state.name in ('COMPLETE', 'PRUNED')]
  trained = sum(_steps(t)[0] for t in ended)
  saved = sum(_steps(t)[1] - _steps(t)[0] for t in ended if t.state.name == 'PRUNED')
  return {'trained': trained, 'saved': saved,
          'fraction_saved': saved / (trained + saved) if trained + saved else 0.0}


def _table(header: list[str], rows: list[list]) -> list[str]:
  return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] +
          ['| ' + ' | '.join(_value(c) for c in row) + ' |' for row in rows])


def write_report(root: pathlib.Path) -> tuple[str, list[pathlib.Path]]:
  import optuna  # pylint: disable=g-import-not-at-top
  try:
    rec = json.loads((root / search_lib.SEARCH_FILE).read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read {root / search_lib.SEARCH_FILE}: {e}") from None
  study = search_lib.open_study(rec, root)
  trials = study.get_trials(deepcopy=False)
  states = search_lib.counts(study)
  complete = [t for t in trials if t.state.name == 'COMPLETE']
  keys = list(rec['space'])
  saved = compute_saved(trials)
  lines = [f"# Search {rec['name']}", '',
           f"{len(trials)} of {rec['trials']} trials: " + ', '.join(
               f'{n} {s}' for s, n in sorted(states.items())) +
           f". Validation `{rec['metric']}` ({rec['direction']}), sampler {rec['sampler']}, "
           f"pruner {rec['pruner']}; base `{rec['base']}`; study `"
           f"{search_lib.storage_url(rec, root)}`.", '',
           f"Compute: {saved['trained']:,} steps trained; pruning saved {saved['saved']:,} steps "
           f"({100 * saved['fraction_saved']:.1f}% of what running every trial to the end "
           f"would have cost).", '']
  if not complete:
    lines.append('No trial has finished yet.')
    text = '\n'.join(lines) + '\n'
    (root / layout.REPORT).write_text(text)
    return text, [root / layout.REPORT]
  reverse = rec['direction'] == 'maximize'
  ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
  lines += ['## Best trials (validation)', ''] + _table(
      ['trial', f"validation {rec['metric']}", *keys, 'steps'],
      [[t.number, t.value, *(t.params.get(k) for k in keys), _steps(t)[0]] for t in ranked[:10]])
  baseline = next((t for t in trials if t.user_attrs.get('baseline')), None)
  importances = _importances(study, optuna)
  if importances:
    lines += ['', '## Parameter importance (fANOVA over the complete trials)', ''] + _table(
        ['parameter', 'importance'], [[k, v] for k, v in importances.items()])
  chosen = study.best_trial
  lines += ['', '## Chosen on validation', '',
            f"Trial {chosen.number} ({', '.join(f'{k}={_value(v)}' for k, v in chosen.params.items())}): "
            f"validation {rec['metric']} {_value(chosen.value)}."]
  if baseline is not None and baseline.state.name == 'COMPLETE':
    lines.append(f"Baseline (trial {baseline.number}, the hand-set point): validation "
                 f"{_value(baseline.value)}.")
  lines += ['', f"Only now, test (`{rec['test_metric']}`): chosen trial "
                f"{_value(chosen.user_attrs.get('test'))}" + (
                    f", baseline {_value(baseline.user_attrs.get('test'))}"
                    if baseline is not None and baseline.state.name == 'COMPLETE' else '') + '.']
  paths = _plots(study, root, optuna)
  text = '\n'.join(lines) + '\n'
  (root / layout.REPORT).write_text(text)
  (root / 'report.json').write_text(json.dumps({
      'states': states, 'compute': saved, 'importances': importances,
      'chosen': {'trial': chosen.number, 'params': chosen.params, 'validation': chosen.value,
                 'test': chosen.user_attrs.get('test')},
      'baseline': baseline and {'trial': baseline.number, 'params': baseline.params,
                                'validation': baseline.value,
                                'test': baseline.user_attrs.get('test')}}, indent=2) + '\n')
  return text, [root / layout.REPORT, root / 'report.json', *paths]


def _importances(study, optuna) -> dict:
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      return dict(optuna.importance.get_param_importances(study, evaluator=(
          optuna.importance.FanovaImportanceEvaluator(seed=0))))
  except (RuntimeError, ValueError):  # Too few complete trials, or a parameter never varied.
    return {}


def _plots(study, root: pathlib.Path, optuna) -> list[pathlib.Path]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from optuna.visualization import matplotlib as plots  # pylint: disable=g-import-not-at-top
  (root / 'plots').mkdir(exist_ok=True)
  written = []
  for name, draw in (('optimization_history', plots.plot_optimization_history),
                     ('parallel_coordinate', plots.plot_parallel_coordinate),
                     ('intermediate_values', plots.plot_intermediate_values)):
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # Optuna marks its matplotlib plots experimental.
      try:
        axes = draw(study)
      except (ValueError, RuntimeError):
        continue
    figure = (axes.flat[0] if hasattr(axes, 'flat') else axes).get_figure()
    figure.set_size_inches(8, 5)
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # The parallel-coordinate plot's margins cannot always fit.
      figure.tight_layout()
    path = root / 'plots' / f'{name}.png'
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)
  return written
