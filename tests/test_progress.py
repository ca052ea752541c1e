"""Live progress: plain lines off a terminal (cadence, no control characters), a bar on one;
progress and profiling settings. A real run's output is checked in test_run_report.py."""
import io
import re

import pytest

from research import config as config_lib
from research.errors import UserError
from research.run import profiling, progress as progress_lib
from research.rundir import metric_writers

# Anything but printable text, newlines and tabs: \r, ANSI escapes (\x1b), backspaces, ...
CONTROL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f]')
LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| step (\d+)/(\d+) ')


class _Clock:
  """A clock the test moves by hand: the cadence is checked without timing anything."""

  def __init__(self):
    self.now = 0.0

  def __call__(self) -> float:
    return self.now


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


def _steps_of_lines(text: str) -> list[int]:
  return [int(LINE.match(line).group(1)) for line in text.splitlines() if LINE.match(line)]


def test_lines_come_every_interval_and_at_each_evaluation():
  stream, clock = io.StringIO(), _Clock()
  with progress_lib.Progress(100, num_epochs=10, mode='auto', every_seconds=10.0,
                             stream=stream, clock=clock) as progress:
    assert progress.mode == 'lines'  # A StringIO is not a terminal.
    for step in range(1, 101):
      clock.now += 1.0  # One second per step.
      progress.update(step)
      if step % 20 == 0:
        progress.write(step, 'train', {'loss': 1.0 / step, 'accuracy': 0.5})
      if step == 50:
        progress.write(step, 'validation', {'loss': 0.7, 'accuracy': 0.875})
  text = stream.getvalue()
  # The first step, then every 10 s (10 steps), and the evaluation at step 50, which restarts
  # the interval; the last line falls on step 100, so closing adds none.
  assert _steps_of_lines(text) == [1, 11, 21, 31, 41, 50, 60, 70, 80, 90, 100]
  assert not CONTROL.search(text), repr(text)
  lines = text.splitlines()
  assert len(lines) == 11  # Nothing but progress lines.
  assert 'validation accuracy 0.875' in lines[5] and 'epoch 5.00' in lines[5]
  # At step 90: the latest train row is step 80's; one step a second since step 1; 10 to go.
  assert 'loss 0.0125' in lines[9] and '1 steps/s, ETA 0:00:10' in lines[9]


def test_closing_prints_the_last_step_when_it_was_not_shown():
  stream, clock = io.StringIO(), _Clock()
  with progress_lib.Progress(30, mode='lines', every_seconds=100.0, stream=stream,
                             clock=clock) as progress:
    for step in range(1, 31):
      clock.now += 1.0
      progress.update(step)
  assert _steps_of_lines(stream.getvalue()) == [1, 30]


def test_a_terminal_gets_a_bar_with_the_latest_facts():
  stream = _Terminal()
  with progress_lib.Progress(50, num_epochs=5, stream=stream) as progress:
    assert progress.mode == 'bar'
    for step in range(1, 51):
      progress.update(step)
      if step == 25:
        progress.write(step, 'train', {'loss': 0.5})
        progress.write(step, 'validation', {'accuracy': 0.75, 'loss': 0.6})
  text = stream.getvalue()
  assert '50/50' in text and 'step/s' in text
  assert 'loss 0.5' in text and 'validation accuracy 0.75' in text and 'epoch 5.00' in text


def test_progress_settings_are_validated():
  config = config_lib.load('configs/default.py')
  config.progress = 'fancy'
  with pytest.raises(UserError, match="config.progress mode 'fancy'.*allowed: auto, bar"):
    config_lib.validate(config)
  config.progress, config.progress_every_seconds = 'lines', -1.0
  with pytest.raises(UserError, match='progress_every_seconds must be a number >= 0'):
    config_lib.validate(config)


@pytest.mark.parametrize('steps, message', [
    ((5, 5), 'first < last'), ((0, 3), 'first < last'), ((3, 99), r'total_steps \(20\)'),
    ((1, 2, 3), 'two step numbers'), (('a', 'b'), 'two step numbers')])
def test_profile_steps_are_validated(steps, message):
  config = config_lib.base()
  config.total_steps, config.profile_steps = 20, steps
  with pytest.raises(UserError, match=message):
    profiling.steps_to_trace(config)



@pytest.mark.parametrize('mode, shown_splits', [
    ('lines', ['train', 'test']), ('bar', ['train', 'validation', 'test']),
    ('none', ['train', 'validation', 'test'])])
def test_an_evaluation_is_printed_once(caplog, mode, shown_splits):
  """Off a terminal the progress line stands for an evaluation, so the log leaves out its
  metric row while the display is open; a bar or no display keeps every row."""
  stream = _Terminal() if mode == 'bar' else io.StringIO()
  log_rows = metric_writers.LogWriter()
  caplog.set_level('INFO', logger='research')
  with progress_lib.Progress(4, mode=mode, stream=stream, clock=_Clock()) as progress:
    writer = metric_writers.MultiWriter([log_rows, progress])
    progress.update(2)
    writer.write(2, 'train', {'loss': 0.5})
    writer.write(2, 'validation', {'loss': 0.25, 'accuracy': 0.75})
  writer.write(4, 'test', {'loss': 0.3, 'accuracy': 0.7})  # After the loop, as train.py does.
  logged = [r.getMessage().split()[2] for r in caplog.records if r.getMessage().startswith('step')]
  assert logged == shown_splits
  if mode == 'lines':
    evaluation = [l for l in stream.getvalue().splitlines() if 'validation' in l]
    assert len(evaluation) == 1 and 'validation accuracy 0.75 (loss 0.25)' in evaluation[0]
  log_rows.write(6, 'validation', {'loss': 0.2})  # The display is closed: rows are back.
  assert caplog.records[-1].getMessage().startswith('step 6 validation')
