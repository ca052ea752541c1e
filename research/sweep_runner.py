"""`research sweep`: runs every point of an experiment file as child processes, resumably.

Each run is the ordinary `research train` on its own sub-directory `DIR/<run name>`
(log in `DIR/<run name>/train.log`), so a run's workdir follows the normal contract and rerunning
the sweep resumes it from its checkpoints; runs with a summary.json are skipped, unless their
config.json differs from what the experiment now asks for (then the sweep refuses to start rather
than tabulate stale results beside new ones; see `stale_runs`). Runs that differ
only in seed (the seeds of a grid point), or also in the scalar hyper-parameters that
`research.vectorized` accepts (learning rate, weight decay, ...), are trained as one vmapped
program in one child, `python -m research.sweep_group`, when vectorizing is on.
Children start as `python -P -m ...`: they import exactly what this process imports
(`child_python`), never a folder in the current directory named like a dependency.

Every config is loaded, overridden and validated before the first child starts, so a typo in the
experiment file costs nothing. SIGTERM / SIGINT stop the children (they checkpoint) and the sweep
exits 128 + signal; rerunning resumes. A failing run does not stop the others: it is reported at
the end with its log, and the exit code is 1.
"""
import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

from research import config as config_lib
from research import preemption, rundir
from research import sweep as sweep_lib
from research.errors import UserError

POLL_SECONDS = 0.2
TERMINATE_GRACE_SECONDS = 300  # Children finish a step and write a checkpoint before exiting.
GROUPS_DIR = 'groups'
TIMING_FILE = 'sweep_log.jsonl'
MAX_GROUP_RUNS = 32  # Runs trained as one vmapped program at most.
# Settings that change neither training nor the final metrics: a finished run that differs from
# the experiment only in these still counts as finished.
RESULT_NEUTRAL_KEYS = ('dataset.data_dir', 'progress', 'progress_every_seconds', 'tensorboard',
                       'wandb', 'profile_steps', 'log_every', 'keep_checkpoints',
                       'checkpoint_every')


@dataclasses.dataclass
class Task:
  """One child process: a single run, or several seeds of a grid point trained together."""
  runs: list[sweep_lib.Run]
  command: list[str]
  log: pathlib.Path
  process: subprocess.Popen | None = None
  started: float = 0.0

  @property
  def title(self) -> str:
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


def _train_args(run: sweep_lib.Run, run_dir: pathlib.Path) -> list[str]:
  return ['train', '--config', run.config, '--workdir', str(run_dir),
          *(f'--config.{o}' for o in run.overrides)]


def _train_command(run: sweep_lib.Run, run_dir: pathlib.Path) -> list[str]:
  return [*child_python()[0], '-m', 'research', *_train_args(run, run_dir)]


def _vectorized_module():
  """research.vectorized if it is installed here, else None."""
  if importlib.util.find_spec('research.vectorized') is None:
    return None
  from research import vectorized  # pylint: disable=g-import-not-at-top
  return vectorized


def _batches(groups: dict[str, list[sweep_lib.Run]], configs: dict, vectorized
             ) -> list[list[sweep_lib.Run]]:
  """Greedily joins grid points whose runs research.vectorized accepts together (points that
  differ only in scalar hyper-parameters such as the learning rate), up to MAX_GROUP_RUNS runs."""
  batches: list[list[sweep_lib.Run]] = []
  for members in groups.values():
    for batch in batches if vectorized is not None else ():
      joined = batch + members
      if (len(joined) <= MAX_GROUP_RUNS and
          vectorized.vectorizable([configs[r.name] for r in joined]) is None):
        batch.extend(members)
        break
    else:
      batches.append(list(members))
  return batches


def _group_dir(workdir: pathlib.Path, runs: Sequence[sweep_lib.Run]) -> pathlib.Path:
  """Where a vectorized task checkpoints: named by its members, so that a rerun with other
  unfinished members does not resume a group of different shape."""
  points = list(dict.fromkeys(r.group for r in runs))
  if len(points) == 1:
    return workdir / GROUPS_DIR / f"{points[0]},seeds={'+'.join(str(r.seed) for r in runs)}"
  digest = hashlib.sha1('\n'.join(r.name for r in runs).encode()).hexdigest()[:8]
  return workdir / GROUPS_DIR / f'{points[0]}+{len(points) - 1}-more-points,{digest}'


_ABSENT = object()  # A setting missing from a stored config.json.


def stale_runs(done: Sequence[sweep_lib.Run], configs: dict, workdir: pathlib.Path
               ) -> dict[str, list[str]]:
  """{run name: ['key: old -> new', ...]} for finished runs whose config.json differs from the
  config the experiment now expands to, resolved as that run resolved its own (so derived values
  agree), in a setting not in `RESULT_NEUTRAL_KEYS`. A setting that a run's config.json lacks
  (it predates the setting) counts as the base default, which keeps the older behaviour."""
  stale = {}
  for run in done:
    try:
      raw = rundir.config(workdir / run.name)
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


def plan(runs: Sequence[sweep_lib.Run], configs: dict, workdir: pathlib.Path, vectorize: bool,
         say: Callable[[str], None]) -> tuple[list[Task], list[sweep_lib.Run]]:
  """(tasks to start, runs already finished). With `vectorize`, the unfinished seeds of a grid
  point, and of other points that differ only in scalar hyper-parameters, form one vectorized
  task when research.vectorized accepts their configs; every other run is a task of its own."""
  done = [r for r in runs if (workdir / r.name / rundir.SUMMARY).exists()]
  _refuse_stale(stale_runs(done, configs, workdir), workdir)
  pending = [r for r in runs if r not in done]
  groups: dict[str, list[sweep_lib.Run]] = {}
  for run in pending:
    groups.setdefault(run.group, []).append(run)
  vectorized = _vectorized_module() if vectorize else None
  if vectorize and vectorized is None and any(len(g) > 1 for g in groups.values()):
    say('vectorized seeds unavailable (no research.vectorized): running each seed separately')
  tasks = []
  for batch in _batches(groups, configs, vectorized):
    reason = 'one run' if len(batch) == 1 else None
    if reason is None and vectorized is not None:
      reason = vectorized.vectorizable([configs[r.name] for r in batch])
    if vectorized is not None and reason is None:
      group_dir = _group_dir(workdir, batch)
      command = [*child_python()[0], '-m', 'research.sweep_group', '--sweep-dir', str(workdir),
                 '--group-dir', str(group_dir), *(r.name for r in batch)]
      tasks.append(Task(batch, command, group_dir / 'train.log'))
      continue
    if vectorized is not None and len(batch) > 1:
      say(f'{batch[0].group}: seeds run separately ({reason})')
    tasks.extend(Task([r], _train_command(r, workdir / r.name), workdir / r.name / 'train.log')
                 for r in batch)
  return tasks, done


def _start(task: Task) -> None:
  task.log.parent.mkdir(parents=True, exist_ok=True)
  env = child_python()[1]
  path = f"PYTHONPATH={shlex.quote(env['PYTHONPATH'])} " if env else ''
  with open(task.log, 'a') as log:
    log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {path}{shlex.join(task.command)}\n")
    log.flush()
    task.process = subprocess.Popen(task.command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
  task.started = time.time()


def _stop_all(running: Sequence[Task], say: Callable[[str], None]) -> None:
  """SIGTERM to every child (each checkpoints and exits), then wait for them."""
  for task in running:
    if task.process.poll() is None:
      task.process.send_signal(signal.SIGTERM)
  deadline = time.time() + TERMINATE_GRACE_SECONDS
  for task in running:
    try:
      task.process.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      say(f'{task.title}: did not stop within {TERMINATE_GRACE_SECONDS} s; killing it')
      task.process.kill()
      task.process.wait()


def execute(tasks: list[Task], workdir: pathlib.Path, jobs: int,
            say: Callable[[str], None]) -> tuple[list[Task], int | None]:
  """Runs tasks, at most `jobs` at a time. Returns (failed tasks, stopping signal or None)."""
  queue, running, failed, finished = list(tasks), [], [], 0
  total = len(tasks)
  with preemption.stop_on_signals() as stop:
    while queue or running:
      if stop:
        say(f'stopping on {signal.Signals(stop.signum).name}: asking {len(running)} running '
            'run(s) to checkpoint; rerun the same command to resume')
        _stop_all(running, say)
        return failed, stop.signum
      while queue and len(running) < jobs:
        task = queue.pop(0)
        _start(task)
        running.append(task)
      time.sleep(POLL_SECONDS)
      for task in [t for t in running if t.process.poll() is not None]:
        running.remove(task)
        finished += 1
        code = task.process.returncode
        missing = [r.name for r in task.runs
                   if not (workdir / r.name / rundir.SUMMARY).exists()]
        seconds = time.time() - task.started
        if code == 0 and not missing:
          say(f'[{finished}/{total}] done {task.title} ({seconds:.0f} s)')
        else:
          failed.append(task)
          say(f'[{finished}/{total}] FAILED {task.title} (exit {code}); log: {task.log}')
  return failed, None


def run_sweep(experiment: str, workdir: str, jobs: int = 1, dry_run: bool = False,
              vectorize: bool = True, say: Callable[[str], None] = print) -> int:
  """Expands, validates and runs an experiment file. Returns the exit code."""
  if jobs < 1:
    raise UserError(f"--jobs must be >= 1, got {jobs}")
  sweep = sweep_lib.load_experiment(experiment)
  runs = sweep_lib.expand(sweep)
  record = sweep_lib.sweep_record(sweep, runs, experiment)
  configs = sweep_lib.build_configs(runs)
  root = pathlib.Path(workdir)
  if dry_run:
    say(f'{sweep.name}: {len(runs)} runs ({len(runs) // sweep.seeds} points x {sweep.seeds} '
        f'seeds) in {root}')
    for run in runs:
      say(f'{run.name}: ' + shlex.join(_train_args(run, root / run.name)))
    tasks, done = plan(runs, configs, root, vectorize, say)
    say(f'would start {len(tasks)} task(s) ({len(done)} run(s) already finished): '
        + '; '.join(t.title for t in tasks))
    return 0
  # Before writing anything: plan refuses a workdir holding stale finished runs.
  tasks, done = plan(runs, configs, root, vectorize, say)
  root.mkdir(parents=True, exist_ok=True)
  (root / sweep_lib.SWEEP_FILE).write_text(json.dumps(record, indent=2) + '\n')
  say(f'{sweep.name}: {len(runs)} runs, {len(done)} already finished, {len(tasks)} to start '
      f'({jobs} at a time) in {root}')
  start = time.time()
  failed, signum = execute(tasks, root, jobs, say)
  wall = time.time() - start
  if tasks:
    with open(root / TIMING_FILE, 'a') as f:
      f.write(json.dumps({
          'time': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'wall_seconds': round(wall, 1),
          'jobs': jobs, 'vectorize': vectorize, 'tasks': len(tasks),
          'runs': sum(len(t.runs) for t in tasks), 'failed': len(failed),
          'stopped_by': signal.Signals(signum).name if signum else None}) + '\n')
  if signum:
    return 128 + signum
  for task in failed:
    say(f'failed: {task.title}: log {task.log}')
  if tasks:
    say(f'{sweep.name}: {len(tasks) - len(failed)} of {len(tasks)} task(s) finished in '
        f'{wall:.0f} s')
  say(f'`research report {root}` tabulates the sweep')
  return 1 if failed else 0

