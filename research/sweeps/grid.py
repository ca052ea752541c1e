"""A sweep's runs: an experiment file (research/sweeps/spec.py) expanded into one run per grid point
and seed, each checked before anything runs, and the `sweep.json` record a sweep directory keeps.

Each run is `DIR/<axis>=<label>,...,seed=<s>`; its config is the point's config file with the
sweep's and the point's overrides, exactly as `research train --config ... --config.a.b=V`.
"""
import ast
import copy
import dataclasses
import importlib.util
import json
import pathlib
import re
from typing import Any, Mapping, Sequence

import ml_collections

from research import config as config_lib
from research.errors import UserError
from research.rundir import layout

SWEEP_FILE = layout.SWEEP


from research.sweeps.spec import Search, Sweep


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the expanded sweep."""
  name: str
  group: str  # The grid point's name: runs of one group differ only in seed.
  config: str
  overrides: tuple[str, ...]  # 'a.b=V' strings, exactly as `research train --config.a.b=V`.
  labels: Mapping[str, str]
  seed: int


def format_override(key: str, value: Any) -> str:
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
          overrides=tuple(format_override(k, v) for k, v in overrides.items()) + (
              f'seed={seed}',),
          labels=dict(point.labels), seed=seed))
  return runs


def load_experiment(path: str) -> Sweep | Search:
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
  if not isinstance(sweep, (Sweep, Search)):
    raise UserError(f"get_sweep() in {path!r} must return a research.sweeps.spec.Sweep or "
                    f"Search, got {type(sweep).__name__}")
  return sweep


def build_configs(runs: Sequence[Run]) -> dict[str, ml_collections.ConfigDict]:
  """Loads, overrides and validates every run's config, before anything runs.

  Any bad config file, unknown key or bad value is a UserError naming the run.
  """
  # JAX: not for reports.
  from research.run import agent_parts, parts  # pylint: disable=g-import-not-at-top
  files, configs = {}, {}
  for run in runs:
    try:
      if run.config not in files:
        files[run.config] = config_lib.load(run.config)
      config = copy.deepcopy(files[run.config])
      config_lib.apply_overrides(config, run.overrides)
      # Every registry's checks, without data or JAX computation (an agent's: agent_parts).
      (agent_parts.check if config_lib.is_agent(config) else parts.check)(config)
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
