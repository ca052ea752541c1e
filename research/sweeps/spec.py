"""What an experiment file states: a base config, axes of overrides, seeds, and its tables.

An experiment file `experiments/X.py` defines `get_sweep()` returning a `Sweep`:

    from research.sweeps.spec import Metric, Sweep, axis, one_at_a_time, product, zip_axes

    def get_sweep():
      return Sweep(
          name='mnist1d_baselines',
          base='configs/mnist1d_mlp.py',
          grid=product(
              axis('model', {'mlp': {}, 'cnn': 'configs/mnist1d_cnn.py'}),
              axis('lr', [1e-3, 1e-2], key='optimizer.learning_rate')),
          seeds=5,
          metrics=(Metric('test accuracy', 'final.test.accuracy', percent=True),),
          rows=('model',), columns=('lr',),
          references={('mlp', '0.01'): 0.68})

Config file paths are relative to the current directory, as on the `research train` command line
(run sweeps from the repository root). An axis value either switches the config file (a string
'configs/Y.py[:arg]'), or sets override keys (a dict {'optimizer.name': 'sgd'}), or both
(`Setting(config=..., overrides=...)`). `product` crosses axes, `zip_axes` moves axes together,
`one_at_a_time` concatenates axes that vary one factor each around the base (labelled by the axes
`factor` and `setting`). Each grid point is run once per seed 0..seeds-1, in
`DIR/<axis>=<label>,...,seed=<s>`.

Expanding it into runs is `research.sweeps.grid`; running them `research.sweeps.runner`; tables
are `research.reports.sweep_tables`, plots `research.reports.sweep_plots`.
"""
import dataclasses
import itertools
from typing import Any, Mapping, Sequence

from research.errors import UserError


@dataclasses.dataclass(frozen=True)
class Setting:
  """What one axis value does: switch the config file and/or set override keys."""
  config: str | None = None
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Point:
  """One grid point: its axis labels, config file (None: the base) and overrides."""
  labels: Mapping[str, str]
  config: str | None = None
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Metric:
  """A number tabulated from each run's summary.json, addressed by a dotted path."""
  name: str
  path: str
  percent: bool = False  # Show 100 * value (references are given as fractions too).


@dataclasses.dataclass(frozen=True)
class Sweep:
  """An experiment: base config, grid of points, seeds, and how to tabulate the results.

  `references` maps a tuple of labels (the `rows` axes then the `columns` axes) to the value the
  experiment compares `reference_metric` against (e.g. a paper's number).
  """
  name: str
  base: str
  grid: Sequence[Point]
  seeds: int = 1
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  metrics: Sequence[Metric] = (Metric('test accuracy', 'final.test.accuracy'),)
  rows: Sequence[str] = ()
  columns: Sequence[str] = ()
  references: Mapping[tuple, float] = dataclasses.field(default_factory=dict)
  reference_name: str = 'reference'
  reference_metric: str | None = None  # None: the first metric.
  curves: Sequence[str] = ('accuracy', 'loss')  # Validation metrics plotted against step.
  # `--launcher slurm` settings (research/sweeps/slurm.py): partition, time, cpus_per_task, ...
  slurm: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _label(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return 'x'.join(_label(v) for v in value) or 'none'
  return str(value)


def axis(name: str, values: Sequence[Any] | Mapping[str, Any], key: str | None = None
         ) -> list[Point]:
  """One axis. `values` is a list of values for override `key` (labelled by the value), or a dict
  label -> (override dict | config file string | Setting)."""
  if key is not None:
    if isinstance(values, Mapping):
      raise UserError(f"axis {name!r}: with key= give a list of values, not a dict")
    return [Point({name: _label(v)}, None, {key: v}) for v in values]
  if not isinstance(values, Mapping):
    raise UserError(f"axis {name!r}: give key='a.b' for a list of values, or a dict "
                    "label -> overrides / config file")
  points = []
  for label, value in values.items():
    if isinstance(value, str):
      value = Setting(config=value)
    elif isinstance(value, Mapping):
      value = Setting(overrides=dict(value))
    elif not isinstance(value, Setting):
      raise UserError(f"axis {name!r} value {label!r}: expected a dict of overrides, a config "
                      f"file string or a Setting, got {type(value).__name__}")
    points.append(Point({name: str(label)}, value.config, dict(value.overrides)))
  return points


def _merge(a: Point, b: Point) -> Point:
  if a.config and b.config and a.config != b.config:
    raise UserError(f"points {dict(a.labels)} and {dict(b.labels)} both set the config file")
  overlap = set(a.labels) & set(b.labels)
  if overlap:
    raise UserError(f"axis {sorted(overlap)[0]!r} appears twice in one product or zip")
  return Point({**a.labels, **b.labels}, a.config or b.config, {**a.overrides, **b.overrides})


def product(*axes: Sequence[Point]) -> list[Point]:
  """Every combination of one point from each axis."""
  return _merge_rows(itertools.product(*axes))


def zip_axes(*axes: Sequence[Point]) -> list[Point]:
  """Axes moving together: point i of each (they must have the same length)."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise UserError(f"zip_axes needs axes of equal length, got lengths {sorted(lengths)}")
  return _merge_rows(zip(*axes))


def _merge_rows(rows) -> list[Point]:
  """Merges the points of each row (a tuple with one point per axis) into one point."""
  merged = []
  for row in rows:
    point = Point({})
    for part in row:
      point = _merge(point, part)
    merged.append(point)
  return merged


def one_at_a_time(*axes: Sequence[Point], base: str | None = None) -> list[Point]:
  """Concatenates single-axis sweeps around the base config: labels become factor=<axis>,
  setting=<label>, so that one table holds every factor. With `base` (a label such as
  'relu, adam'), the base config itself comes first as factor='base', setting=<base>, and the
  axes list only the settings that differ from it (each shared base run is trained once)."""
  points = [Point({'factor': 'base', 'setting': base})] if base is not None else []
  for ax in axes:
    for point in ax:
      if len(point.labels) != 1:
        raise UserError(f"one_at_a_time takes single axes, got a point labelled "
                        f"{dict(point.labels)}")
      (factor, setting), = point.labels.items()
      points.append(Point({'factor': factor, 'setting': setting}, point.config, point.overrides))
  return points


@dataclasses.dataclass(frozen=True)
class Param:
  """One dimension of a search space (see `log_uniform`, `uniform`, `integer`, `categorical`)."""
  kind: str  # 'float', 'int' or 'categorical'
  low: float | None = None
  high: float | None = None
  log: bool = False
  choices: tuple = ()


def log_uniform(low: float, high: float) -> Param:
  return Param('float', low, high, log=True)


def uniform(low: float, high: float) -> Param:
  return Param('float', low, high)


def integer(low: int, high: int, log: bool = False) -> Param:
  return Param('int', low, high, log=log)


def categorical(*choices: Any) -> Param:
  """Any config values (tuples too); Optuna sees their labels."""
  return Param('categorical', choices=tuple(choices))


@dataclasses.dataclass(frozen=True)
class Search:
  """A hyper-parameter search with Optuna (research/sweeps/search.py): `trials` runs of `base`
  with `overrides`, each with values drawn from `space` ({config key: Param}), chosen on the
  validation `metric` (a metrics.jsonl column of the validation rows) in `direction`. `sampler`:
  'tpe' or 'random'; `pruner`: 'median', 'successive_halving' or 'none', fed every evaluation.
  `baseline` (a {key: value} point of the space, e.g. the hand-set config) is the first trial.
  `storage`: None for a journal file in the sweep directory, or an RDB URL
  ('sqlite:///x.db', 'postgresql://...'). The test metric (`test_metric`, a summary.json path)
  of the trial chosen on validation is reported; nothing is chosen on it."""
  name: str
  base: str
  space: Mapping[str, Param]
  trials: int
  metric: str = 'accuracy'
  direction: str = 'maximize'
  sampler: str = 'tpe'
  pruner: str = 'median'
  seed: int = 0
  startup_trials: int = 5  # Trials before the sampler and pruner act on what they saw.
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  baseline: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  storage: str | None = None
  test_metric: str = 'final.test.accuracy'
  slurm: Mapping[str, Any] = dataclasses.field(default_factory=dict)
