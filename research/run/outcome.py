"""What a run's numbers come to: the train row of each metric window, the non-finite policy
(a run whose loss or final metrics are not finite fails with exit 1 instead of reporting), and the
fields of summary.json, including the speed the loop measured.
"""
import dataclasses
import time

import ml_collections
import numpy as np

from research.core import metric_sums, tasks
from research.run import flops
from research.rundir import checkpoint


class NonFiniteError(RuntimeError):
  """A NaN or Inf appeared in the loss or the gradients (and skip_nonfinite is off), or a run
  with skip_nonfinite did not train."""


def nonfinite_error(step: int, ckpt: checkpoint.Checkpointer, run: str = '') -> NonFiniteError:
  """The error that stops a run whose loss or gradients at `step` are not finite."""
  last = ckpt.latest_step()
  last = ('no checkpoint was written yet' if last is None
          else f'the last good checkpoint is step {last}')
  return NonFiniteError(
      f"{run}non-finite loss or gradients at step {step}; {last}. Lower the learning rate, clip "
      "gradients (optimizer.grad_clip_norm) or set skip_nonfinite=True")


def window_row(task: tasks.Task, host_window: list[dict]) -> tuple[dict, int | None]:
  """The `train` row of a closed window of per-step metric sums (host arrays), and the index in
  the window of its first step with a non-finite loss or gradient norm (None when all are
  finite). Such steps are left out of the row's means and counted in its `skipped_nonfinite`."""
  finite = [bool(np.isfinite(w['loss'][0]) and np.isfinite(w['grad_norm'][0]))
            for w in host_window]
  kept = [w for w, ok in zip(host_window, finite) if ok]
  row = task.summarize(metric_sums.sum_window(kept)) if kept else {}
  if len(kept) < len(host_window):
    row['skipped_nonfinite'] = len(host_window) - len(kept)
  return row, None if all(finite) else finite.index(False)


def check_trained(final: dict, skipped: int, steps: int, skip_nonfinite: bool,
                  run: str = '') -> None:
  """A run whose final metrics are not finite, or that skipped most of its steps with
  skip_nonfinite, did not train: it fails (NonFiniteError, exit 1) instead of reporting."""
  bad = [f'{split} {name}={value}' for split, values in final.items()
         for name, value in values.items()
         if isinstance(value, float) and not np.isfinite(value)]
  if bad:
    raise NonFiniteError(f"{run}the final metrics are not finite ({', '.join(bad)}); no summary "
                         "was written. Lower the learning rate or clip gradients "
                         "(optimizer.grad_clip_norm)")
  if skip_nonfinite and steps and skipped > steps / 2:
    raise NonFiniteError(
        f"{run}{skipped} of {steps} steps were skipped as non-finite (skip_nonfinite=True): the "
        "run did not train; no summary was written. Lower the learning rate or clip gradients "
        "(optimizer.grad_clip_norm)")


@dataclasses.dataclass
class Timing:
  """The loop's bookkeeping of speed, for summary.json."""
  start: int
  wall_start: float = dataclasses.field(default_factory=time.time)
  timer: flops.Stopwatch = dataclasses.field(default_factory=flops.Stopwatch)
  compile_seconds: float | None = None
  flops_per_step: float | None = None
  last_step: int = 0


def train_validation_gap(task: tasks.Task, final: dict) -> dict:
  """The loss gap (validation minus train) and the task's gap metric (`task.gap_metric`):
  train minus validation accuracy, or for error metrics (regression's rmse) validation minus
  train, so that a positive gap always means the model does better on what it trained on."""
  metric = task.gap_metric
  gap = {'loss': final['validation']['loss'] - final['train']['loss']}
  if metric == 'accuracy':
    gap['accuracy'] = final['train']['accuracy'] - final['validation']['accuracy']
  else:
    gap[metric] = final['validation'][metric] - final['train'][metric]
  return dict(sorted(gap.items()))


def run_summary(cfg: ml_collections.ConfigDict, final: dict, timing: Timing, *, last_step: int,
                skipped: int, early_stopping: dict | None, devices,
                task: tasks.Task) -> dict:
  """The fields of summary.json (`Workdir.write_summary` adds devices and versions). `devices`
  (the run's Placement) gives the peak FLOP/s for `mfu`. Throughput is the program's: a
  vectorized member advanced `steps_per_second` steps per second."""
  timed_steps = timing.last_step - timing.start - (cfg.steps_per_dispatch
                                                   if timing.compile_seconds else 0)
  rate = timed_steps / timing.timer.seconds if timed_steps > 0 and timing.timer.seconds else None
  return {
      'steps': last_step,
      'final': final,
      # None where the program evaluates no training split (an agent: research/run/agent.py).
      'train_validation_gap': train_validation_gap(task, final) if 'train' in final else None,
      'steps_per_second': rate,
      'examples_per_second': rate * cfg.batch_size if rate is not None else None,
      'compile_seconds': timing.compile_seconds,
      'flops_per_step': timing.flops_per_step,
      'mfu': flops.mfu(timing.flops_per_step, rate,
                       flops.peak_flops(devices.devices, cfg.dtype)),
      'wall_seconds': time.time() - timing.wall_start,
      'resumed_from_step': timing.start or None,
      'skipped_nonfinite_steps': skipped if cfg.skip_nonfinite else None,
      'early_stopping': early_stopping,
  }
