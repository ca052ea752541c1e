"""Graceful stops: SIGTERM / SIGINT end a run after the current step, with a checkpoint.

Cluster schedulers announce preemption with SIGTERM; a person stops a run with Ctrl-C (SIGINT).
Either way the runner finishes the step in flight, writes a checkpoint (waiting for the async
write to commit), and raises `Preempted`; the CLI then exits with 128 + the signal number (143 for
SIGTERM, 130 for SIGINT), as a shell reports a process ended by that signal. Rerunning the same
command resumes from that checkpoint. This works in a single process: Orbax's own preemption
check only fires under `jax.distributed`.
"""
import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """The run stopped on a signal after checkpointing `step`."""

  def __init__(self, step: int, signum: int):
    super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; a checkpoint "
                     "was written: rerun the same command to resume")
    self.step, self.signum = step, signum

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class StopRequest:
  """Set by a signal handler; read by the training loop between steps."""

  def __init__(self):
    self.signum: int | None = None

  def __bool__(self) -> bool:
    return self.signum is not None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
  """Within the block, SIGTERM and SIGINT set the yielded request instead of killing the process.

  Outside the main thread (where Python cannot install handlers) the request never fires.
  """
  request = StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield request
    return

  def handler(signum, frame):
    del frame
    request.signum = signum

  previous = {s: signal.signal(s, handler) for s in SIGNALS}
  try:
    yield request
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
