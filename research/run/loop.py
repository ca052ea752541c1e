"""The training loop: one schedule for every kind of training.

`run` owns what every run shares: restoring the newest good checkpoint, replaying early-stopping
decisions, the schedule (log every `log_every` steps, evaluate every `eval_every`, checkpoint every
`checkpoint_every`, profile `profile_steps`), metric windows and the non-finite policy
(outcome.py), signals (preemption.py), timing, the final evaluation and summary.json. What differs
between kinds of training is a `Program`: a single run (single_run.py) and a vectorized group of K
runs (vectorized.py) are two; an agent that collects its own data implements the same methods.

A program trains `members` runs at once (1 for a single run). Each member has its own workdir,
metric rows, early stopping and summary; once a member stops early its state is frozen (the
program's `train` gets an `active` mask) while the others go on, and the loop ends when every
member has stopped or the last step is reached.
"""
import dataclasses
import logging
import pathlib
import time
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from research.core import tasks
from research.errors import UserError
from research.run import dispatch, early_stopping, outcome, preemption, profiling
from research.run import progress as progress_lib
from research.rundir import checkpoint, metric_writers, provenance, workdir as workdir_lib

log = logging.getLogger('research')


class Program(Protocol):
  """What the loop drives. `config` is resolved: its schedule is the loop's."""
  config: ml_collections.ConfigDict
  task: tasks.Task
  devices: Any  # placement.Placement: step syncing and peak FLOP/s for MFU.
  members: int
  steps_per_dispatch: int
  final_splits: tuple[str, ...]  # Evaluated at the end; supervised: train, validation, test.

  def init_state(self) -> Any: ...
  def restore(self, ckpt: checkpoint.Checkpointer, state: Any) -> tuple[int, Any]: ...
  def place(self, state: Any) -> Any: ...
  def train(self, state: Any, active: np.ndarray) -> tuple[Any, Any]: ...
  # Optional: a program with `max_steps_per_dispatch` (an int) is called as
  # `train(state, active, count)` and runs `count` steps in one dispatch: `steps_per_dispatch`
  # first (compiling), then up to the next log / eval / checkpoint step, at most this many; its
  # `window_to_host` returns one entry per step.
  def flops_per_step(self, state: Any) -> float | None: ...
  def window_to_host(self, window: list) -> list: ...
  def member_sums(self, host_sums: Any, k: int) -> dict: ...
  def evaluate(self, state: Any, split: str) -> list[dict]: ...
  def exact_match(self, state: Any, split: str) -> list[float | None]: ...
  def save(self, ckpt: checkpoint.Checkpointer, step: int, state: Any) -> None: ...
  def finish(self, state: Any, steps: list[int]) -> None: ...
  def summary_extras(self, summary: dict) -> dict: ...


@dataclasses.dataclass
class Member:
  """One run's workdir in the loop: its resolved config, where it came from (run.json), and the
  prefix of its error messages ('' for a single run)."""
  run_dir: workdir_lib.Workdir
  config: ml_collections.ConfigDict
  source: provenance.ConfigSource | None = None
  label: str = ''


def run(program: Program, ckpt: checkpoint.Checkpointer, members: list[Member],
        home: pathlib.Path, stop_request: preemption.StopRequest,
        end_step: int | None = None) -> list[dict]:
  """Trains `program` from its newest good checkpoint in `ckpt`; returns one summary per member.

  `home` is the directory of the program's own files (its profile trace). `end_step` stops this
  call after that step with a checkpoint (a time-boxed slice; the next call resumes) and returns
  {'steps': step, 'finished': False} per member."""
  cfg, task = program.config, program.task
  state, start = program.init_state(), 0
  if ckpt.latest_step() is not None:
    start, state = program.restore(ckpt, state)
  stoppers = [early_stopping.from_config(cfg) for _ in members]
  rows = [[r for r in m.run_dir.metric_rows() if r['step'] <= start] for m in members]
  stop_steps = [_replay(stopper, member_rows) for stopper, member_rows in zip(stoppers, rows)]
  summaries = [m.run_dir.summary() for m in members]
  if all(start >= cfg.total_steps or s is not None for s in stop_steps) and all(summaries):
    log.info('%s already finished at step %d; nothing to do', home, start)
    return summaries
  kept = 'before training resumed; the checkpoints are unchanged' if start else (
      'before training started; nothing was trained')
  stop_request.check(kept)

  for m in members:
    m.run_dir.record_start(m.config, m.source)  # Only now: training (or evaluation) will run.
  # Live progress reads the first member's train loss and validation metric from its rows.
  progress = progress_lib.Progress.from_config(cfg, enabled=members[0].run_dir.is_writer)
  writers = [m.run_dir.metric_writer(m.config) for m in members]
  writers[0] = metric_writers.MultiWriter([writers[0], progress])
  for writer, member in zip(writers, members):
    dropped = writer.truncate_after(start)  # Rows of a killed attempt after the restored step.
    if start:
      log.info('%sresumed from step %d (%d metric rows after it dropped)', member.label, start,
               dropped)
  skipped = [sum(r.get('skipped_nonfinite', 0) for r in member_rows if r['split'] == 'train')
             for member_rows in rows]

  state = program.place(state)
  k = program.steps_per_dispatch  # Steps run k at a time; every interval is a multiple of k.
  if start % k:
    raise UserError(f"the newest checkpoint is at step {start}, not a multiple of "
                    f"config.steps_per_dispatch={k}; resume with a k that divides it")
  end = cfg.total_steps if end_step is None else min(end_step, cfg.total_steps)
  active = np.array([s is None for s in stop_steps])
  timing, window, last_validation = outcome.Timing(start=start, last_step=start), [], None
  profiler = profiling.StepTrace(profiling.steps_to_trace(cfg), home / 'profile', k)
  most = getattr(program, 'max_steps_per_dispatch', None)
  stops = (cfg.log_every, cfg.eval_every, cfg.checkpoint_every)
  with progress, profiler:
    for step in _dispatch_ends(start, end if active.any() else start, k, most, stops,
                               profiling.steps_to_trace(cfg)):
      if step == start + k:  # A signal that came during set-up: stop before compiling.
        stop_request.check(kept)
      profiler.before_step(step, state)
      first, tic = timing.compile_seconds is None, time.perf_counter()
      if most is None:
        state, sums = program.train(state, active)
      else:
        state, sums = program.train(state, active, step - timing.last_step)
      progress.update(step)
      window.append(sums)
      timing.last_step = step
      if first or program.devices.needs_step_sync:
        jax.block_until_ready(sums)
      if first:  # Compilation plus one dispatch: not throughput.
        timing.compile_seconds = time.perf_counter() - tic
        timing.flops_per_step = program.flops_per_step(state)
        timing.timer.start()

      preempted = stop_request.signum  # Read once: a signal may arrive at any moment.
      do_eval = step % cfg.eval_every == 0 or step == cfg.total_steps
      do_save = (step % cfg.checkpoint_every == 0 or step == cfg.total_steps or step == end
                 or preempted)
      if not (do_eval or do_save or step % cfg.log_every == 0):
        continue
      jax.block_until_ready(state)
      timing.timer.stop()
      # The window also closes at every checkpoint, so a resumed run logs the same rows.
      host_window = dispatch.per_step(program.window_to_host(window), 1 if most else k)
      window = []
      for i in np.flatnonzero(active):
        row, bad = outcome.window_row(task, [program.member_sums(w, i) for w in host_window])
        if bad is not None and not cfg.skip_nonfinite:
          ckpt.wait()
          raise outcome.nonfinite_error(step - len(host_window) + 1 + bad, ckpt, members[i].label)
        skipped[i] += row.get('skipped_nonfinite', 0)
        writers[i].write(step, 'train', row)
      stopping = []
      if do_eval:
        last_validation = program.evaluate(state, 'validation')
        for i in np.flatnonzero(active):
          writers[i].write(step, 'validation', last_validation[i])
          if stoppers[i].update(step, last_validation[i]):
            stopping.append(i)
      if do_save or stopping:
        program.save(ckpt, step, state)
      if preempted:
        ckpt.wait()
        raise preemption.Preempted(preempted, f"after step {step}; a checkpoint was written: "
                                   "rerun the same command to resume")
      for i in stopping:
        s = stoppers[i]
        log.info('%searly stopping at step %d: validation %s has not improved on %.4g (step %d) '
                 'for %d evaluations', members[i].label, step, s.metric, s.best, s.best_step,
                 s.patience)
        active[i], stop_steps[i] = False, step
      if not active.any():
        break
      timing.timer.start()
  timing.timer.stop()
  ckpt.wait()
  last_step = timing.last_step
  if active.any() and last_step < cfg.total_steps:
    for writer in writers:  # Stopped at end_step: the next call resumes.
      writer.close()
    return [{'steps': last_step, 'finished': False} for _ in members]

  finals = _final(program, state, last_validation, last_step, stop_request)
  member_steps = [last_step if s is None else s for s in stop_steps]
  for i, (member, final) in enumerate(zip(members, finals)):
    outcome.check_trained(final, skipped[i], member_steps[i], cfg.skip_nonfinite, member.label)
  program.finish(state, member_steps)
  out = []
  for i, (member, writer, final) in enumerate(zip(members, writers, finals)):
    writer.write(member_steps[i], 'test', final['test'])
    writer.close()
    stopper = stoppers[i]
    summary = outcome.run_summary(
        member.config, final, timing, last_step=member_steps[i], skipped=skipped[i],
        early_stopping=({**stopper.state(), 'stopped': stop_steps[i] is not None}
                        if stopper.patience else None), devices=program.devices,
        task=program.task)
    summary.update(program.summary_extras(summary))
    out.append(member.run_dir.write_summary(summary, program.devices))
  return out


def _dispatch_ends(start: int, end: int, k: int, most: int | None, stops: tuple[int, ...],
                   profiled: tuple[int, int] | None = None):
  """The step each dispatch ends at: every k-th step, or (a program with `most` steps per
  dispatch) k steps first, then up to the next multiple of any of `stops` or `end`; the
  `profiled` steps (first, last) run k per dispatch, so their trace shows each step."""
  if most is None:
    yield from range(start + k, end + 1, k)
    return
  first, last = profiled or (end + 1, end)
  before_profile = (first - 1) // k * k  # Where the profiled steps' dispatches begin.
  step = start
  while step < end:
    following = min([(step // s + 1) * s for s in stops] + [end])
    if step < before_profile:
      following = min(following, before_profile)
    single = step == start or first <= step + 1 <= last
    step = min(step + k, end) if single else min(following, step + most)
    yield step


def _replay(stopper: early_stopping.EarlyStopping, rows: list[dict]) -> int | None:
  """Replays the validation rows written before a resume; the step at which the member stopped
  early (None if it did not)."""
  for row in rows:
    if row['split'] == 'validation' and stopper.update(row['step'], row):
      return row['step']
  return None


def _final(program: Program, state: Any, last_validation: list[dict] | None, last_step: int,
           stop_request: preemption.StopRequest) -> list[dict]:
  """Each member's metrics on the program's `final_splits` (supervised: train in eval mode,
  validation and test), with exact match where the task has prompts; a signal is honoured
  between splits (the last checkpoint is on disk)."""
  during = (f"during the final evaluation; the checkpoint at step {last_step} holds the trained "
            "state: rerun the same command to evaluate it")
  splits = {}
  for split in program.final_splits:
    stop_request.check(during)
    splits[split] = (last_validation if split == 'validation' and last_validation
                     else program.evaluate(state, split))
  finals = [{split: rows[i] for split, rows in splits.items()} for i in range(program.members)]
  for split in ('validation', 'test'):
    stop_request.check(during)
    if split not in splits:
      continue
    for final, exact in zip(finals, program.exact_match(state, split)):
      if exact is not None:
        final[split] = {**final[split], 'exact_match': exact}
  stop_request.check(during)
  return finals
