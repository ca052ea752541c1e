"""A `jax.profiler` trace of chosen training steps: `config.profile_steps=(a, b)`.

Steps a to b (both included, counted from 1 like the loop; with `steps_per_dispatch` k, the
compiled calls that hold them) are traced into `workdir/profile/`:
`plugins/profile/<time>/*.xplane.pb` for TensorBoard's profile tab (`pip install
tensorboard-plugin-profile`, then `tensorboard --logdir WORKDIR/profile`) and a
`perfetto_trace.json.gz` beside it to open at ui.perfetto.dev. Skip the first steps: they
include compilation. A resumed run traces whatever part of a..b it still has to run.
"""
import os
import pathlib

import jax
import ml_collections

from research.errors import UserError


def steps_to_trace(config: ml_collections.ConfigDict) -> tuple[int, int] | None:
  """The validated (a, b) of a resolved config, or None when profiling is off."""
  steps = config.profile_steps
  if not steps:
    return None
  if (not isinstance(steps, (tuple, list)) or len(steps) != 2
      or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)):
    raise UserError(f"config.profile_steps must be two step numbers (first, last), e.g. "
                    f"--config.profile_steps='(10, 20)', got {steps!r}")
  first, last = steps
  if not 1 <= first < last <= config.total_steps:
    raise UserError(f"config.profile_steps={tuple(steps)} must satisfy 1 <= first < last <= "
                    f"total_steps ({config.total_steps})")
  return first, last


class StepTrace:
  """Starts the trace before step a and stops it once step b has finished.

  Use as a context manager around the loop and call `before_step(step, state)` at the top of
  every iteration; leaving the block stops a trace still running (last step, early stop, error).
  """

  def __init__(self, steps: tuple[int, int] | None, logdir: str | os.PathLike,
               steps_per_call: int = 1):
    self.steps, self.logdir, self.active = steps, pathlib.Path(logdir), False
    self.steps_per_call = steps_per_call  # Under steps_per_dispatch=k a call runs k steps.

  def before_step(self, step: int, state) -> None:
    """Call before running the call that ends at `step` (steps step-k+1 .. step)."""
    if self.steps is None:
      return
    first, last = self.steps
    call_first = step - self.steps_per_call + 1
    if not self.active and call_first <= last and step >= first:
      jax.block_until_ready(state)  # Earlier steps' work stays out of the trace.
      jax.profiler.start_trace(str(self.logdir), create_perfetto_trace=True)
      self.active = True
    elif self.active and call_first > last:
      jax.block_until_ready(state)  # Step `last` has finished: all of it is in the trace.
      self._stop()

  def _stop(self) -> None:
    jax.profiler.stop_trace()
    self.active = False
    self.steps = None  # One trace per process.

  def __enter__(self) -> 'StepTrace':
    return self

  def __exit__(self, *exc_info) -> None:
    if self.active:
      self._stop()
