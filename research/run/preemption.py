"""Graceful stops: SIGTERM / SIGINT end a run cleanly, from process start to exit.

Cluster schedulers announce preemption with SIGTERM; a person stops a run with Ctrl-C (SIGINT).
A handler only records the signal (`StopRequest`); the runner reads it at safe points, so a signal
never lands inside XLA compilation, a restore or an Orbax write (raising there crashed the process):
- before training starts (config, data, initialization, restore): the run stops with nothing
  new written;
- in the training loop: the step in flight finishes, a checkpoint is written (waiting for the
  async write to commit);
- during the final evaluation: the last checkpoint is already on disk; the run stops before
  writing summary.json, and rerunning evaluates.
Each raises `Preempted`; the CLI exits with 128 + the signal number (143 for SIGTERM, 130 for
SIGINT), as a shell reports a process ended by that signal. A second signal while the first is
being honoured exits at once (without a new checkpoint; the last committed one stays). This works
in a single process: Orbax's own preemption check only fires under `jax.distributed`.
"""
import contextlib
import os
import signal
import sys
import threading
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """The run stopped on a signal; `message` says what was kept."""

  def __init__(self, signum: int, message: str):
    super().__init__(f"stopped by {signal.Signals(signum).name} {message}")
    self.signum = signum

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class StopRequest:
  """Set by a signal handler; read by the runner at safe points."""

  def __init__(self):
    self.signum: int | None = None

  def __bool__(self) -> bool:
    return self.signum is not None

  def check(self, message: str) -> None:
    """Raises `Preempted` (with `message`: what was kept) if a signal has arrived."""
    if self.signum is not None:
      raise Preempted(self.signum, message)


@contextlib.contextmanager
def stop_on_signals(request: StopRequest | None = None) -> Iterator[StopRequest]:
  """Within the block, SIGTERM and SIGINT set the yielded request instead of killing the process.

  Pass an outer block's `request` to keep a signal that arrived before this block. A second signal
  exits the process at once. Outside the main thread (where Python cannot install handlers) the
  request never fires.
  """
  request = request if request is not None else StopRequest()

  def handler(signum, frame):
    del frame
    if request.signum is not None:
      _exit_now(signum, f"research: second signal ({signal.Signals(signum).name}): exiting now, "
                "without a new checkpoint")
    request.signum = signum

  with _handling(handler):
    yield request


@contextlib.contextmanager
def exit_on_signals(command: str) -> Iterator[None]:
  """For commands that only read (eval, generate): a signal exits at once with 128 + signum and
  one line, instead of a KeyboardInterrupt raised inside a JAX or Orbax call."""
  def handler(signum, frame):
    del frame
    _exit_now(signum, f"research {command}: stopped by {signal.Signals(signum).name}")

  with _handling(handler):
    yield


@contextlib.contextmanager
def _handling(handler) -> Iterator[None]:
  """`handler` for SIGTERM and SIGINT within the block, the previous handlers restored after it
  (outside the main thread, where Python cannot install handlers, nothing changes)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, handler) for s in SIGNALS}
  try:
    yield
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _exit_now(signum: int, message: str) -> None:
  print(message, file=sys.stderr, flush=True)
  os._exit(128 + signum)  # pylint: disable=protected-access
