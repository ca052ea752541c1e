"""`research sweep`: runs every point of an experiment file as child processes, resumably.

Each run is the ordinary `research train` on its own sub-directory `DIR/<run name>`
(log in `DIR/<run name>/train.log`), so a run's workdir follows the normal contract and rerunning
the sweep resumes it from its checkpoints; research/sweeps/plan.py decides what is finished,
stale or grouped.

Every config is loaded, overridden and validated before the first child starts, so a typo in the
experiment file costs nothing. SIGTERM / SIGINT stop the children (they checkpoint) and the sweep
exits 128 + signal; rerunning resumes. A failing run does not stop the others: it is reported at
the end with its log, and the exit code is 1.
"""
import json
import pathlib
import shlex
import signal
import subprocess
import time
from typing import Callable, Sequence

from research.errors import UserError
from research.run import preemption
from research.rundir import layout
from research.sweeps import grid, plan as plan_lib, search, slurm
from research.sweeps.spec import Search
from research.sweeps.plan import Task

POLL_SECONDS = 0.2
TERMINATE_GRACE_SECONDS = 300  # Children finish a step and write a checkpoint before exiting.
TIMING_FILE = 'sweep_log.jsonl'


def _start(task: Task) -> None:
  task.log.parent.mkdir(parents=True, exist_ok=True)
  env = plan_lib.child_python()[1]
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
                   if not (workdir / r.name / layout.SUMMARY).exists()]
        seconds = time.time() - task.started
        if code == 0 and not missing:
          say(f'[{finished}/{total}] done {task.title} ({seconds:.0f} s)')
        else:
          failed.append(task)
          say(f'[{finished}/{total}] FAILED {task.title} (exit {code}); log: {task.log}')
  return failed, None


def run_sweep(experiment: str, workdir: str, jobs: int = 1, dry_run: bool = False,
              vectorize: bool = True, say: Callable[[str], None] = print,
              launcher: str = 'local', slurm_flags: dict | None = None,
              wait: bool = False) -> int:
  """Expands, validates and runs an experiment file. Returns the exit code."""
  if jobs < 1:
    raise UserError(f"--jobs must be >= 1, got {jobs}")
  sweep = grid.load_experiment(experiment)
  if isinstance(sweep, Search):
    return search.run_search(sweep, experiment, workdir, jobs, launcher, slurm_flags or {},
                             dry_run, wait, say)
  runs = grid.expand(sweep)
  record = grid.sweep_record(sweep, runs, experiment)
  configs = grid.build_configs(runs)
  root = pathlib.Path(workdir)
  if launcher == 'slurm':
    return _run_on_slurm(sweep, runs, record, configs, root, vectorize, slurm_flags or {},
                         dry_run, wait, say)
  if dry_run:
    say(f'{sweep.name}: {len(runs)} runs ({len(runs) // sweep.seeds} points x {sweep.seeds} '
        f'seeds) in {root}')
    for run in runs:
      say(f'{run.name}: ' + shlex.join(plan_lib.train_args(run, root / run.name)))
    tasks, done = plan_lib.plan(runs, configs, root, vectorize, say)
    say(f'would start {len(tasks)} task(s) ({len(done)} run(s) already finished): '
        + '; '.join(t.title for t in tasks))
    return 0
  # Before writing anything: plan refuses a workdir holding stale finished runs.
  tasks, done = plan_lib.plan(runs, configs, root, vectorize, say)
  root.mkdir(parents=True, exist_ok=True)
  (root / grid.SWEEP_FILE).write_text(json.dumps(record, indent=2) + '\n')
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



def _run_on_slurm(sweep, runs, record, configs, root: pathlib.Path, vectorize: bool,
                  flags: dict, dry_run: bool, wait: bool, say: Callable[[str], None]) -> int:
  """Reports the runs' SLURM state, submits those not finished, running or pending as one job
  array (research/sweeps/slurm.py); with `wait`, polls until they are done."""
  settings = slurm.settings(sweep.slurm, flags)
  slurm.check_cluster(settings)
  names = [r.name for r in runs]

  def finished() -> set[str]:
    return {n for n in names if (root / n / layout.SUMMARY).exists()}

  states = slurm.status(root, names, finished())
  say(f'{sweep.name}: {len(runs)} runs in {root}: {slurm.summary_line(states)}')
  for name, (state, job) in states.items():
    if state == 'failed':
      say(f'failed: {name} (job {job}); log: {root / name / "train.log"}')
  busy = {n for n, (s, _) in states.items() if s in ('running', 'pending')}
  tasks, _ = plan_lib.plan([r for r in runs if r.name not in busy], configs, root, vectorize, say)
  if dry_run:
    say(f'would submit {len(tasks)} array task(s): ' + '; '.join(t.title for t in tasks))
    return 0
  root.mkdir(parents=True, exist_ok=True)
  (root / grid.SWEEP_FILE).write_text(json.dumps(record, indent=2) + '\n')
  if tasks:
    jobs = slurm.submit(tasks, root, settings, sweep.name)
    say(f'submitted {len(tasks)} array task(s) as job {jobs[0].split("_")[0]}: '
        + '; '.join(f'{j} {t.title}' for j, t in zip(jobs, tasks)))
  if not wait:
    say(f'rerun the same command to see their state (and resubmit failed ones); '
        f'`research report {root}` tabulates what has finished')
    return 0
  start = time.time()
  states = slurm.wait(root, names, finished, say)
  failed = [n for n, (s, _) in states.items() if s != 'finished']
  for name in failed:
    say(f'failed: {name} (job {states[name][1]}); log: {root / name / "train.log"}')
  say(f'{sweep.name}: {len(names) - len(failed)} of {len(names)} run(s) finished; waited '
      f'{time.time() - start:.0f} s')
  return 1 if failed else 0
