"""Sweeps: an experiment file names a base config and axes of overrides; this module expands it.

An experiment file `experiments/X.py` defines `get_sweep()` returning a `Sweep`:

    from research.sweep import Sweep, Metric, axis, product, zip_axes, one_at_a_time

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

The runner is `research.sweep_runner`; tables are `research.sweep_report`, plots
`research.sweep_plots`.
"""
import ast
import copy
import dataclasses
import importlib.util
import itertools
import json
import pathlib
import re
from typing import Any, Mapping, Sequence

import ml_collections

from research import config as config_lib
from research import parts, rundir
from research.errors import UserError

SWEEP_FILE = rundir.SWEEP


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


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the expanded sweep."""
  name: str
  group: str  # The grid point's name: runs of one group differ only in seed.
  config: str
  overrides: tuple[str, ...]  # 'a.b=V' strings, exactly as `research train --config.a.b=V`.
  labels: Mapping[str, str]
  seed: int


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
        raise UserError(f"one_at_a_time takes single axes, got a point labelled {dict(point.labels)}")
      (factor, setting), = point.labels.items()
      points.append(Point({'factor': factor, 'setting': setting}, point.config, point.overrides))
  return points


def _format_override(key: str, value: Any) -> str:
  """'key=V' as `--config.key=V` takes it: a string that would not parse as a Python literal
  stays bare (relu, not 'relu'), everything else is its repr."""
  if isinstance(value, str):
    try:
      ast.literal_eval(value)
    except (ValueError, SyntaxError):
      return f'{key}={value}'
  return f'{key}={repr(tuple(value)) if isinstance(value, list) else repr(value)}'


def _safe(text: str) -> str:
  return re.sub(r'[^A-Za-z0-9._+-]', '-', text)


def expand(sweep: Sweep) -> list[Run]:
  """The runs of a sweep: every grid point × seed, with readable, unique names."""
  if not isinstance(sweep.seeds, int) or sweep.seeds < 1:
    raise UserError(f"sweep {sweep.name!r}: seeds must be an int >= 1, got {sweep.seeds!r}")
  if not sweep.grid:
    raise UserError(f"sweep {sweep.name!r} has an empty grid")
  axes = list(dict.fromkeys(k for p in sweep.grid for k in p.labels))
  for name in list(sweep.rows) + list(sweep.columns):
    if name not in axes:
      raise UserError(f"sweep {sweep.name!r}: table axis {name!r} is not an axis of the grid; "
                      f"axes: {', '.join(axes)}")
  runs, seen = [], {}
  for point in sweep.grid:
    group = ','.join(f'{_safe(k)}={_safe(v)}' for k, v in point.labels.items()) or 'base'
    if group in seen:
      raise UserError(f"sweep {sweep.name!r}: two grid points are both named {group!r}")
    seen[group] = point
    overrides = {**sweep.overrides, **point.overrides}
    if 'seed' in overrides:
      raise UserError(f"sweep {sweep.name!r}: set seeds with Sweep(seeds=N), not an override")
    for seed in range(sweep.seeds):
      runs.append(Run(
          name=f'{group},seed={seed}', group=group, config=point.config or sweep.base,
          overrides=tuple(_format_override(k, v) for k, v in overrides.items()) + (
              f'seed={seed}',),
          labels=dict(point.labels), seed=seed))
  return runs


def load_experiment(path: str) -> Sweep:
  """Imports an experiment file and calls its get_sweep()."""
  file = pathlib.Path(path)
  if file.suffix != '.py' or not file.is_file():
    raise UserError(f"experiment file {path!r} does not exist (expected experiments/NAME.py)")
  spec = importlib.util.spec_from_file_location(f'_research_experiment_{file.stem}', file)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except UserError:
    raise
  except Exception as e:  # An experiment file is code; any error importing it is bad input.
    raise UserError(f"experiment file {path!r} failed to load: {type(e).__name__}: {e}") from None
  if not callable(getattr(module, 'get_sweep', None)):
    raise UserError(f"experiment file {path!r} defines no get_sweep() function")
  try:
    sweep = module.get_sweep()
  except UserError as e:
    raise UserError(f"experiment file {path!r}: {e}") from None
  except Exception as e:
    raise UserError(f"get_sweep() in {path!r} failed: {type(e).__name__}: {e}") from None
  if not isinstance(sweep, Sweep):
    raise UserError(f"get_sweep() in {path!r} must return a research.sweep.Sweep, "
                    f"got {type(sweep).__name__}")
  return sweep


def build_configs(runs: Sequence[Run]) -> dict[str, ml_collections.ConfigDict]:
  """Loads, overrides and validates every run's config, before anything runs.

  Any bad config file, unknown key or bad value is a UserError naming the run.
  """
  files, configs = {}, {}
  for run in runs:
    try:
      if run.config not in files:
        files[run.config] = config_lib.load(run.config)
      config = copy.deepcopy(files[run.config])
      config_lib.apply_overrides(config, run.overrides)
      parts.check(config)  # Every registry's checks, without data or JAX computation.
    except UserError as e:
      raise UserError(f"run {run.name}: {e}") from None
    configs[run.name] = config
  return configs


def sweep_record(sweep: Sweep, runs: Sequence[Run], experiment: str) -> dict:
  """What `sweep.json` holds: enough to tabulate without importing the experiment file."""
  metric_names = [m.name for m in sweep.metrics]
  reference_metric = sweep.reference_metric or metric_names[0]
  if reference_metric not in metric_names:
    raise UserError(f"sweep {sweep.name!r}: reference_metric {reference_metric!r} is not one of "
                    f"the metrics: {', '.join(metric_names)}")
  axes = list(dict.fromkeys(k for r in runs for k in r.labels))
  rows = list(sweep.rows) or [a for a in axes if a not in sweep.columns]
  left = [a for a in axes if a not in rows and a not in sweep.columns]
  if left:
    raise UserError(f"sweep {sweep.name!r}: axis {left[0]!r} is neither in rows nor in columns; "
                    "every axis must name a row or a column of the table")
  keys = rows + list(sweep.columns)
  references = []
  for labels, value in sweep.references.items():
    labels = (labels,) if isinstance(labels, str) else tuple(labels)
    if len(labels) != len(keys):
      raise UserError(f"sweep {sweep.name!r}: reference key {labels!r} needs one label per table "
                      f"axis ({', '.join(keys)})")
    references.append({'labels': dict(zip(keys, map(str, labels))), 'value': value})
  return {
      'name': sweep.name, 'experiment': experiment, 'base': sweep.base, 'seeds': sweep.seeds,
      'axes': axes, 'rows': rows, 'columns': list(sweep.columns),
      'metrics': [dataclasses.asdict(m) for m in sweep.metrics],
      'reference_name': sweep.reference_name, 'reference_metric': reference_metric,
      'references': references, 'curves': list(sweep.curves),
      'runs': [dataclasses.asdict(r) for r in runs],
  }


def read_record(sweep_dir: str | pathlib.Path) -> tuple[dict, list[Run]]:
  """Reads DIR/sweep.json back: the record and its runs."""
  path = pathlib.Path(sweep_dir) / SWEEP_FILE
  try:
    record = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read {str(path)!r}: {e}") from None
  runs = [Run(**{**r, 'overrides': tuple(r['overrides'])}) for r in record['runs']]
  return record, runs
