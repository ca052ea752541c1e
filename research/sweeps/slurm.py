"""`research sweep --launcher slurm`: each task (a run, or a vectorized group) is one task of a
SLURM job array submitted through submitit; rerunning the sweep reads SLURM's state.

Settings come from the experiment file's `Sweep(slurm={...})` and from flags (flags win):

  partition, time (minutes), cpus_per_task, gpus_per_task, mem ('8G'), array_parallelism,
  signal_seconds (the warning before the time limit, default 120), sbatch ({'qos': 'low', ...}:
  any other sbatch option), setup (shell lines run before the task, e.g. `module load cuda`).

Jobs ask for `--signal=TERM@signal_seconds` and `--requeue`; research/sweeps/slurm_task.py runs
the child and requeues it after it checkpointed. Which job holds which runs is appended to
DIR/slurm/jobs.jsonl; submitit's scripts and outputs are in DIR/slurm/. State comes from
`squeue` only: clusters without accounting have no `sacct`, and submitit's blocking result()
can hang on a cancelled job, so neither is used. A run is finished (summary.json), running or
pending (its newest job is in squeue), failed (its job left the queue without a summary), or
not submitted; `research sweep` submits the last two again, and nothing else.
"""
import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

from research.errors import UserError
from research.sweeps.plan import Task, child_python

JOBS_FILE = 'jobs.jsonl'
SLURM_DIR = 'slurm'
ACTIVE = {'PENDING': 'pending', 'REQUEUED': 'pending', 'CONFIGURING': 'pending',
          'REQUEUE_HOLD': 'pending', 'REQUEUE_FED': 'pending', 'RESIZING': 'pending',
          'RUNNING': 'running', 'COMPLETING': 'running', 'SUSPENDED': 'running',
          'STOPPED': 'running', 'SIGNALING': 'running', 'STAGE_OUT': 'running'}


@dataclasses.dataclass(frozen=True)
class Settings:
  partition: str | None = None
  time: int = 60
  cpus_per_task: int = 1
  gpus_per_task: int | None = None
  mem: str | None = None
  array_parallelism: int = 256
  signal_seconds: int = 120
  sbatch: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  setup: Sequence[str] = ()


def settings(from_file: Mapping[str, Any], flags: Mapping[str, Any]) -> Settings:
  """The experiment file's `slurm` dict, then the flags that were given; checked."""
  names = {f.name for f in dataclasses.fields(Settings)}
  unknown = sorted(set(from_file) - names)
  if unknown:
    raise UserError(f"Sweep(slurm=...) has unknown key {unknown[0]!r}; allowed: "
                    f"{', '.join(sorted(names))}")
  merged = {**from_file, **{k: v for k, v in flags.items() if v not in (None, [], {})}}
  for key in ('time', 'cpus_per_task', 'array_parallelism', 'signal_seconds', 'gpus_per_task'):
    value = merged.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or value < (0 if key == 'gpus_per_task' else 1)):
      raise UserError(f"slurm {key} must be a positive int, got {value!r}")
  if merged.get('signal_seconds', 120) >= merged.get('time', 60) * 60:
    raise UserError(f"slurm signal_seconds ({merged.get('signal_seconds', 120)}) must be shorter "
                    f"than the time limit ({merged.get('time', 60)} min)")
  return Settings(**merged)


def _slurm_command(*args: str, what: str) -> subprocess.CompletedProcess:
  if shutil.which(args[0]) is None:
    raise UserError(f"--launcher slurm needs SLURM's `{args[0]}` on PATH ({what}); none found "
                    "on this machine: use --launcher local, or run on a cluster's login node")
  return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def check_cluster(config: Settings) -> None:
  """sbatch exists and the partition is one of the cluster's (before anything is written)."""
  _slurm_command('sbatch', '--version', what='to submit')
  result = _slurm_command('sinfo', '-h', '-o', '%R', what='to list partitions')
  if result.returncode != 0:
    raise UserError(f"cannot reach the SLURM controller: {result.stderr.strip().splitlines()[-1:]}")
  partitions = sorted(set(result.stdout.split()))
  if config.partition is not None and config.partition not in partitions:
    raise UserError(f"unknown SLURM partition {config.partition!r}; this cluster has: "
                    f"{', '.join(partitions) or '(none)'}")


def queue() -> dict[str, str]:
  """{job id: state} of every job SLURM still knows (array tasks as 123_4)."""
  result = _slurm_command('squeue', '-h', '-r', '-o', '%i|%T', what='to read job states')
  if result.returncode != 0:
    raise UserError(f"squeue failed: {result.stderr.strip()[:300]}")
  return dict(line.split('|', 1) for line in result.stdout.split() if '|' in line)


def _records(root: pathlib.Path) -> dict[str, dict]:
  """{run name: the newest job record holding it}."""
  path = root / SLURM_DIR / JOBS_FILE
  newest = {}
  if path.exists():
    for line in path.read_text().splitlines():
      if line.strip():
        record = json.loads(line)
        for name in record['runs']:
          newest[name] = record
  return newest


def status(root: pathlib.Path, names: Sequence[str], finished: set[str]
           ) -> dict[str, tuple[str, str | None]]:
  """{run name: (finished|running|pending|failed|not submitted, job id or None)}."""
  records, states = _records(root), None
  result = {}
  for name in names:
    record = records.get(name)
    if name in finished:
      result[name] = ('finished', record and record['job'])
    elif record is None:
      result[name] = ('not submitted', None)
    else:
      states = queue() if states is None else states
      result[name] = (ACTIVE.get(states.get(record['job'], ''), 'failed'), record['job'])
  return result


def summary_line(states: Mapping[str, tuple[str, str | None]]) -> str:
  counts = {}
  for state, _ in states.values():
    counts[state] = counts.get(state, 0) + 1
  return ', '.join(f'{counts[s]} {s}' for s in
                   ('finished', 'running', 'pending', 'failed', 'not submitted') if s in counts)


def submit(tasks: Sequence[Task], root: pathlib.Path, config: Settings, name: str) -> list[str]:
  """One array job with one task per sweep task. Returns the job ids (123_0, 123_1, ...)."""
  import submitit  # pylint: disable=g-import-not-at-top  (only the SLURM launcher needs it)
  from research.sweeps.slurm_task import SlurmTask  # pylint: disable=g-import-not-at-top
  folder = root / SLURM_DIR
  executor = submitit.SlurmExecutor(folder=str(folder / '%j'), max_num_timeout=0)
  extra = {'signal': f'TERM@{config.signal_seconds}', 'requeue': True, **config.sbatch}
  executor.update_parameters(
      job_name=name, time=config.time, cpus_per_task=config.cpus_per_task,
      array_parallelism=config.array_parallelism, setup=list(config.setup),
      additional_parameters=extra, stderr_to_stdout=True,
      **{k: v for k, v in (('partition', config.partition), ('mem', config.mem),
                           ('gpus_per_task', config.gpus_per_task)) if v is not None})
  env = child_python()[1]
  with tempfile.TemporaryFile(mode='w+') as errors:
    try:
      with _stderr_to(errors), executor.batch():
        jobs = [executor.submit(SlurmTask(t.title, t.command, env, str(t.log))) for t in tasks]
    except Exception as e:  # submitit raises its own errors for a failed sbatch.
      errors.seek(0)
      said = [l.strip() for l in errors.read().splitlines() if l.strip()]
      reason = ' / '.join(said[-2:]) if said else str(e).strip().splitlines()[-1][:300]
      raise UserError(f"sbatch refused the job array: {reason}") from None
  with open(folder / JOBS_FILE, 'a') as f:
    for task, job in zip(tasks, jobs):
      f.write(json.dumps({'job': job.job_id, 'title': task.title,
                          'runs': [r.name for r in task.runs],
                          'time': time.strftime('%Y-%m-%dT%H:%M:%S%z')}) + '\n')
  return [job.job_id for job in jobs]


@contextlib.contextmanager
def _stderr_to(file) -> Iterator[None]:
  """Sends this process's stderr (fd 2, where sbatch's own messages go) to `file` for a while."""
  sys.stderr.flush()
  saved = os.dup(2)
  os.dup2(file.fileno(), 2)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def wait(root: pathlib.Path, names: Sequence[str], finished: Callable[[], set[str]],
         say: Callable[[str], None], poll_seconds: float = 2.0) -> dict:
  """Polls squeue until none of the runs is running or pending; says each change."""
  last = None
  while True:
    states = status(root, names, finished())
    line = summary_line(states)
    if line != last:
      say(f'[{time.strftime("%H:%M:%S")}] {line}')
      last = line
    if not any(s in ('running', 'pending') for s, _ in states.values()):
      return states
    time.sleep(poll_seconds)
