"""Planning a sweep: which runs are finished, which are stale, and the child processes that train
the rest (one `research train` per run, or one vectorized group per grid point's seeds).

Runs with a summary.json are skipped, unless their config.json differs from what the experiment
now asks for (then the sweep refuses to start rather than tabulate stale results beside new ones;
see `stale_runs`). Runs that differ only in seed (the seeds of a grid point), or also in the
scalar hyper-parameters that `research.run.grouping` accepts (learning rate, weight decay, ...),
are trained as one vmapped program in one child, `python -m research.sweeps.group_child`, when
vectorizing is on. Children start as `python -P -m ...`: they import exactly what this process
imports (`child_python`), never a folder in the current directory named like a dependency.
"""
import dataclasses
import hashlib
import os
import pathlib
import subprocess
import sys
from typing import Callable, Sequence

from research import config as config_lib
from research.errors import UserError
from research.run import grouping
from research.rundir import layout
from research.sweeps import grid

GROUPS_DIR = 'groups'
MAX_GROUP_RUNS = 32  # Runs trained as one vmapped program at most.
# Settings that change neither training nor the final metrics: a finished run that differs from
# the experiment only in these still counts as finished.
RESULT_NEUTRAL_KEYS = ('dataset.data_dir', 'progress', 'progress_every_seconds', 'tensorboard',
                       'wandb', 'profile_steps', 'log_every', 'keep_checkpoints',
                       'checkpoint_every')


@dataclasses.dataclass
class Task:
  """One child process: a single run, or several seeds of a grid point trained together."""
  runs: list[grid.Run]
  command: list[str]
  log: pathlib.Path
  process: subprocess.Popen | None = None
  started: float = 0.0
  name: str | None = None  # A title of its own (a search worker holds no fixed runs).

  @property
  def title(self) -> str:
    if self.name:
      return self.name
    if len(self.runs) == 1:
      return self.runs[0].name
    points = list(dict.fromkeys(r.group for r in self.runs))
    if len(points) == 1:
      return f"{points[0]},seeds={'+'.join(str(r.seed) for r in self.runs)} (vectorized)"
    return f"{len(self.runs)} runs of {len(points)} points: {'; '.join(points)} (vectorized)"


def child_python() -> tuple[list[str], dict[str, str] | None]:
  """(interpreter and flags, environment or None to inherit) for a child that must import exactly
  what this process imports.

  `python -m X` puts the current directory first on the import path, where a folder named like a
  dependency (`torch/`, a `jax/` package) would shadow it in the child only. `-P` (Python 3.11+)
  prepends nothing; this process's own first entry (the console script's directory, or the
  source tree under `python -m research`) leads the child's PYTHONPATH instead: the same path.
  """
  command = [sys.executable, '-P']
  if sys.flags.safe_path or not sys.path:
    return command, None  # Nothing was prepended here either.
  first = os.path.abspath(sys.path[0])
  inherited = os.environ.get('PYTHONPATH')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([first, *([inherited] if inherited else [])]))
  return command, env


def train_args(run: grid.Run, run_dir: pathlib.Path) -> list[str]:
  return ['train', '--config', run.config, '--workdir', str(run_dir),
          *(f'--config.{o}' for o in run.overrides)]


def _train_command(run: grid.Run, run_dir: pathlib.Path) -> list[str]:
  return [*child_python()[0], '-m', 'research', *train_args(run, run_dir)]


def _batches(groups: dict[str, list[grid.Run]], configs: dict, vectorize: bool
             ) -> list[list[grid.Run]]:
  """Greedily joins grid points whose runs research.run.grouping accepts together (points that
  differ only in scalar hyper-parameters such as the learning rate), up to MAX_GROUP_RUNS runs."""
  batches: list[list[grid.Run]] = []
  for members in groups.values():
    for batch in batches if vectorize else ():
      joined = batch + members
      if (len(joined) <= MAX_GROUP_RUNS and
          grouping.vectorizable([configs[r.name] for r in joined]) is None):
        batch.extend(members)
        break
    else:
      batches.append(list(members))
  return batches


def _group_dir(workdir: pathlib.Path, runs: Sequence[grid.Run]) -> pathlib.Path:
  """Where a vectorized task checkpoints: named by its members, so that a rerun with other
  unfinished members does not resume a group of different shape."""
  points = list(dict.fromkeys(r.group for r in runs))
  if len(points) == 1:
    return workdir / GROUPS_DIR / f"{points[0]},seeds={'+'.join(str(r.seed) for r in runs)}"
  digest = hashlib.sha1('\n'.join(r.name for r in runs).encode()).hexdigest()[:8]
  return workdir / GROUPS_DIR / f'{points[0]}+{len(points) - 1}-more-points,{digest}'


_ABSENT = object()  # A setting missing from a stored config.json.


def stale_runs(done: Sequence[grid.Run], configs: dict, workdir: pathlib.Path
               ) -> dict[str, list[str]]:
  """{run name: ['key: old -> new', ...]} for finished runs whose config.json differs from the
  config the experiment now expands to, resolved as that run resolved its own (so derived values
  agree), in a setting not in `RESULT_NEUTRAL_KEYS`. A setting that a run's config.json lacks
  (it predates the setting) counts as the base default, which keeps the older behaviour."""
  stale = {}
  for run in done:
    try:
      raw = layout.config(workdir / run.name)
      if raw is None:
        raise KeyError(layout.CONFIG)
      old = config_lib.with_defaults(raw)
      new = config_lib.resolve_like(configs[run.name], old)
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError, UserError):
      stale[run.name] = ['its config.json is missing or unreadable']
      continue
    changes = []
    for key, (stored, value) in config_lib.flat_diff(old, new).items():
      if value is None or _neutral(key):
        continue
      unset = config_lib.lookup(raw, key, _ABSENT) is _ABSENT
      changes.append(f"{key}: {'(not set)' if unset else repr(stored)} -> {value!r}")
    if changes:
      stale[run.name] = changes
  return stale


def _neutral(key: str) -> bool:
  return any(key == k or key.startswith(k + '.') for k in RESULT_NEUTRAL_KEYS)


def _refuse_stale(stale: dict[str, list[str]], workdir: pathlib.Path) -> None:
  if stale:
    name, changes = next(iter(stale.items()))
    raise UserError(
        f"{len(stale)} finished run(s) in {workdir} were made with a different config than the "
        f"experiment now sets, e.g. {name}: {'; '.join(changes[:4])}. Their results would be "
        f"tabulated as this experiment's; use a new --workdir, or move those runs away and rerun")


def plan(runs: Sequence[grid.Run], configs: dict, workdir: pathlib.Path, vectorize: bool,
         say: Callable[[str], None]) -> tuple[list[Task], list[grid.Run]]:
  """(tasks to start, runs already finished). With `vectorize`, the unfinished seeds of a grid
  point, and of other points that differ only in scalar hyper-parameters, form one vectorized
  task when research.run.grouping accepts their configs; every other run is a task of its own."""
  done = [r for r in runs if (workdir / r.name / layout.SUMMARY).exists()]
  _refuse_stale(stale_runs(done, configs, workdir), workdir)
  pending = [r for r in runs if r not in done]
  groups: dict[str, list[grid.Run]] = {}
  for run in pending:
    groups.setdefault(run.group, []).append(run)
  tasks = []
  for batch in _batches(groups, configs, vectorize):
    reason = 'one run' if len(batch) == 1 else None
    if reason is None and vectorize:
      reason = grouping.vectorizable([configs[r.name] for r in batch])
    if vectorize and reason is None:
      group_dir = _group_dir(workdir, batch)
      command = [*child_python()[0], '-m', 'research.sweeps.group_child',
                 '--sweep-dir', str(workdir), '--group-dir', str(group_dir),
                 *(r.name for r in batch)]
      tasks.append(Task(batch, command, group_dir / 'train.log'))
      continue
    if vectorize and len(batch) > 1:
      say(f'{batch[0].group}: seeds run separately ({reason})')
    tasks.extend(Task([r], _train_command(r, workdir / r.name), workdir / r.name / 'train.log')
                 for r in batch)
  return tasks, done
