"""A run directory's layout: the name of every file in it, and how each is read.

    config.json          the resolved config            run.json      where it came from
    metrics.jsonl        one row per (step, split)      summary.json  final metrics, speed, versions
    dataset.json         what the model needs to know of its data (shapes, classes, splits)
    config_changes.jsonl settings changed on a resume   checkpoints/  Orbax steps
    checkpoints.damaged/ steps that could not be restored, set aside
    tensorboard/ profile/ plots/ report.md
    explain/             `research explain`: summary.md, explain.json, attributions / attention /
                         activations / robustness PNGs (written only there, never elsewhere)

The CLI, the Python API, sweeps and reports read a workdir through these functions; the one writer
is research/rundir/workdir.py. Reading never executes anything and never writes: a damaged file is a
UserError that names it (never a bare JSONDecodeError), a torn last metrics line (a crash in the
middle of a write) is left out. Imports nothing heavy (no JAX), so reports stay quick.
"""
import json
import logging
import os
import pathlib

from research.errors import UserError

CONFIG, RUN, SUMMARY, METRICS = 'config.json', 'run.json', 'summary.json', 'metrics.jsonl'
DATASET, CONFIG_CHANGES = 'dataset.json', 'config_changes.jsonl'
CHECKPOINTS, DAMAGED, LOCK = 'checkpoints', 'checkpoints.damaged', '.lock'
TENSORBOARD, PROFILE, PLOTS, REPORT = 'tensorboard', 'profile', 'plots', 'report.md'
EXPLAIN = 'explain'  # research/explain/: figures, explain.json and summary.md, all inside it.
EXPLAIN_FILES = {'summary': 'summary.md', 'numbers': 'explain.json',
                 'attributions': 'attributions.png', 'attention': 'attention.png',
                 'activations': 'activations.png', 'robustness': 'robustness.png'}
SWEEP = 'sweep.json'  # A sweep directory's index of its runs (research/sweeps/grid.py).

log = logging.getLogger('research')


def read_json(path: os.PathLike) -> dict | None:
  """A JSON object file (None when it does not exist)."""
  path = pathlib.Path(path)
  if not path.is_file():
    return None
  try:
    value = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"{path} is damaged (not valid JSON: {e}); restore it, or move the workdir "
                    "aside and start afresh") from None
  if not isinstance(value, dict):
    raise UserError(f"{path} is damaged (holds a {type(value).__name__}, not a JSON object)")
  return value


def read_rows(path: os.PathLike) -> list[dict]:
  """The rows of a metrics.jsonl file, oldest first ([] when it does not exist).

  A torn last line is left out with a warning: the run that resumes rewrites the file without
  it. A bad line anywhere else is a UserError naming it."""
  path = pathlib.Path(path)
  if not path.is_file():
    return []
  lines = path.read_text(errors='replace').splitlines()
  rows = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
      if not isinstance(row, dict) or 'step' not in row:
        raise ValueError('not a metric row')
    except ValueError as e:
      if number == len(lines):
        log.warning('%s: its last line is incomplete (a run stopped while writing it); '
                    'left out', path)
        break
      raise UserError(f"{path} is damaged at line {number} ({e}); delete that line or move the "
                      "workdir aside") from None
    rows.append(row)
  return rows


def read_config(path: os.PathLike):
  """A config.json file as a complete ConfigDict (research.config.from_stored); UserError when
  it is missing or damaged."""
  from research import config as config_lib  # pylint: disable=g-import-not-at-top
  stored = read_json(path)
  if stored is None:
    raise UserError(f"{path} does not exist")
  return config_lib.from_stored(stored)


def config(workdir: os.PathLike) -> dict | None:
  return read_json(pathlib.Path(workdir) / CONFIG)


def summary(workdir: os.PathLike) -> dict | None:
  return read_json(pathlib.Path(workdir) / SUMMARY)


def run_record(workdir: os.PathLike) -> dict | None:
  return read_json(pathlib.Path(workdir) / RUN)


def dataset(workdir: os.PathLike) -> dict | None:
  return read_json(pathlib.Path(workdir) / DATASET)


def rows(workdir: os.PathLike) -> list[dict]:
  return read_rows(pathlib.Path(workdir) / METRICS)


def is_run(path: os.PathLike) -> bool:
  """Whether `path` is a run's workdir (it has a config.json)."""
  return (pathlib.Path(path) / CONFIG).is_file()
