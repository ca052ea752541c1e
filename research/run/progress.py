"""Live progress of a training run: a bar on a terminal, plain timestamped lines everywhere else.

On a terminal (stderr is a TTY) a tqdm bar shows step/total, steps/s and the ETA, with the epoch,
the latest train loss and the latest validation metric beside it; log records are printed above
the bar (tqdm's logging redirect) instead of through it. Off a terminal (CI, `2> run.log`) the
same facts go out as one line every `config.progress_every_seconds` and at every evaluation, with
no carriage returns or ANSI escapes, so a log file reads cleanly.

Nothing here touches the accelerator: `update(step)` only counts steps, and the loss and the
validation metric come from the metric rows the loop has already brought to the host (`Progress`
is a `metrics.MetricWriter`, fed through the run's `MultiWriter`).

Each evaluation is printed once. In 'lines' mode its progress line (step, epoch, ETA, train loss,
the validation metric and loss) stands for it, and the log's own `step N validation ...` row is
left out while the display is open (every row stays in metrics.jsonl). With a bar, the rows are
printed above it, as the bar only shows the latest one; with progress 'none', the rows are all.
"""
import contextlib
import datetime
import logging
import os
import sys
import time
from typing import Callable, Mapping, TextIO

import ml_collections
import tqdm
from tqdm.contrib import logging as tqdm_logging

from research.config import schema

MODES = schema.CHOICES['progress']


def _is_terminal(stream: TextIO) -> bool:
  isatty = getattr(stream, 'isatty', None)
  return bool(isatty and isatty()) and os.environ.get('TERM') != 'dumb'


def _format_seconds(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(round(seconds))))


def quiet_library_bars(stream: TextIO | None = None) -> None:
  """Off a terminal, turns off the bars TFDS draws while preparing a dataset: they write ANSI
  cursor moves even into log files. Process-wide, so for the command line, not for libraries."""
  if not _is_terminal(stream if stream is not None else sys.stderr):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds.disable_progress_bar()


class Progress:
  """Shows how far a run is; use as a context manager around the training loop.

  Args:
    total_steps: the run's last step.
    num_epochs: how many epochs `total_steps` make (for the epoch column); None hides it.
    mode: 'bar', 'lines', 'none', or 'auto' (a bar on a terminal, lines otherwise).
    every_seconds: in 'lines' mode, the time between two lines (evaluations add one each).
    metric: the validation metric to show (e.g. 'accuracy'; 'loss' when a row lacks it).
    stream: where to write (default: stderr).
    clock: seconds from a monotonic clock (tests drive it by hand to check the cadence).
    steps_per_call: steps each `update` moves on by (`steps_per_dispatch`).
  """

  def __init__(self, total_steps: int, num_epochs: float | None = None, *, mode: str = 'auto',
               every_seconds: float = 30.0, metric: str = 'accuracy',
               stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
               steps_per_call: int = 1):
    self.stream = stream if stream is not None else sys.stderr
    if mode not in MODES:
      raise ValueError(f'unknown progress mode {mode!r}; allowed: {", ".join(MODES)}')
    if mode == 'auto':
      mode = 'bar' if _is_terminal(self.stream) else 'lines'
    self.mode, self.total_steps, self.every_seconds = mode, total_steps, every_seconds
    self.metric, self._clock, self._steps_per_call = metric, clock, steps_per_call
    self._steps_per_epoch = total_steps / num_epochs if num_epochs else None
    self._step: int | None = None
    self._loss: float | None = None
    self._validation: tuple[str, float] | None = None
    self._validation_loss: float | None = None  # Shown beside a validation metric that is not it.
    self._line_time: float | None = None  # When the last line was printed, and at which step.
    self._line_step: int | None = None
    self._first: tuple[float, int] | None = None  # (time, step) of the first update.
    self._bar: tqdm.tqdm | None = None
    self._exit_stack = contextlib.ExitStack()
    self._closed = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, enabled: bool = True,
                  stream: TextIO | None = None) -> 'Progress':
    """Progress for a resolved config; `enabled` False (not process 0) shows nothing."""
    return cls(config.total_steps, config.num_epochs,
               mode=config.progress if enabled else 'none',
               every_seconds=config.progress_every_seconds,
               metric=config.early_stopping.metric, stream=stream,
               steps_per_call=config.steps_per_dispatch)

  def __enter__(self) -> 'Progress':
    if self.mode == 'bar':
      # Log records go through tqdm.write while the bar is shown, and go back to normal after.
      self._exit_stack.enter_context(tqdm_logging.logging_redirect_tqdm())
    elif self.mode == 'lines':  # Evaluations are this display's lines: not a log row as well.
      logger, only_once = logging.getLogger('research'), _EvaluationRowsLeftOut()
      logger.addFilter(only_once)
      self._exit_stack.callback(logger.removeFilter, only_once)
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def update(self, step: int) -> None:
    """Steps up to `step` have been dispatched. Cheap: no device access, a clock read at most."""
    if self.mode == 'none' or self._closed:
      return
    first = self._step is None
    self._step = step
    if self.mode == 'bar':
      if self._bar is None:
        self._bar = tqdm.tqdm(total=self.total_steps, initial=step - self._steps_per_call,
                              unit='step', desc='train', file=self.stream, dynamic_ncols=True)
      self._set_postfix()
      self._bar.update(step - self._bar.n)  # Redraws at most every 0.1 s (tqdm's mininterval).
      return
    now = self._clock()
    if first or now - self._line_time >= self.every_seconds:
      self._print_line(now)

  def write(self, step: int, split: str, values: Mapping) -> None:
    """Takes the latest train loss and validation metric from a metric row."""
    if self.mode == 'none' or self._closed:
      return
    if split == 'train' and 'loss' in values:
      self._loss = float(values['loss'])
    elif split == 'validation':
      name = self.metric if self.metric in values else 'loss'
      if name in values:
        self._validation = (name, float(values[name]))
      self._validation_loss = float(values['loss']) if 'loss' in values else None
    else:
      return
    if self.mode == 'bar':
      self._set_postfix()
    elif split == 'validation':
      self._step = max(self._step or 0, int(step))
      self._print_line(self._clock())

  def close(self) -> None:
    """Ends the display: closes the bar, or prints a last line for the last step reached."""
    if self._closed:
      return
    self._closed = True
    if self._bar is not None:
      self._bar.close()
    elif self.mode == 'lines' and self._step is not None and self._step != self._line_step:
      self._print_line(self._clock())
    self._exit_stack.close()

  def _set_postfix(self) -> None:
    """Puts the facts beside the bar when they changed (a new row, or the epoch moved on)."""
    facts = self._facts()
    if self._bar is not None and facts != self._bar.postfix:
      self._bar.set_postfix_str(facts, refresh=False)

  def _facts(self) -> str:
    """Epoch, train loss and validation metric, those that are known yet."""
    facts = []
    if self._steps_per_epoch and self._step is not None:
      facts.append(f'epoch {self._step / self._steps_per_epoch:.2f}')
    if self._loss is not None:
      facts.append(f'loss {self._loss:.4g}')
    if self._validation is not None:
      name, value = self._validation
      loss = self._validation_loss
      facts.append(f'validation {name} {value:.4g}' +
                   (f' (loss {loss:.4g})' if name != 'loss' and loss is not None else ''))
    return ', '.join(facts)

  def _print_line(self, now: float) -> None:
    step = self._step
    # The mean rate since the first update (which came after compilation): evaluations and
    # checkpoints are part of a run's pace, and the ETA stays steady between lines.
    self._first = self._first or (now, step)
    rate = ((step - self._first[1]) / (now - self._first[0])
            if now > self._first[0] and step > self._first[1] else None)
    parts = [datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
             f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%)']
    facts = self._facts()
    if facts:
      parts.append(facts)
    if rate:
      remaining = (self.total_steps - step) / rate
      parts.append(f'{rate:.3g} steps/s, ETA {_format_seconds(remaining)}')
    print(' | '.join(parts), file=self.stream, flush=True)
    self._line_time, self._line_step = now, step


class _EvaluationRowsLeftOut(logging.Filter):
  """Drops metrics.LogWriter's `step N validation ...` rows (their progress line shows them)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return getattr(record, 'metric_split', None) != 'validation'
