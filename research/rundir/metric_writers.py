"""Metric writers, all in one place: metrics.jsonl (the contract), log lines, TensorBoard event
files and (optionally) Weights & Biases, one row per (step, split).

Every writer has the `MetricWriter` interface (`write(step, split, values)`, `close()`) and sits
behind one `MultiWriter`, so the training loop writes each row once.

Resuming: the JSONL writer drops rows logged after the restored step; the TensorBoard writer
opens its next event files with `purge_step` = that step + 1, which makes TensorBoard discard
the older files' points from there on (the same rows the JSONL file dropped); W&B keeps the rows
it already has and ignores re-logged steps it has seen (resumed runs re-log the same values).
"""
import json
import logging
import math
import os
import pathlib
import secrets
import sys
import time
from typing import Iterable, Mapping, Protocol

import ml_collections

from research import config as config_lib
from research.config import schema
from research.rundir import layout

WANDB_MODES = schema.CHOICES['wandb.mode']
log = logging.getLogger('research')


class MetricWriter(Protocol):
  def write(self, step: int, split: str, values: Mapping) -> None: ...
  def close(self) -> None: ...


class JsonlWriter:
  """Appends `{"step", "split", **values}` lines to `metrics.jsonl`, flushed per row.

  The writer keeps the rows of the run in memory (a few per evaluation), so that a file deleted
  or replaced while the run goes on is written again whole, with a warning, instead of the later
  rows going silently into the deleted file."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    self._rows = [json.dumps(row, default=float) for row in layout.read_rows(self.path)]
    self._file = None

  def truncate_after(self, step: int) -> int:
    """Drops rows logged after `step` (a resumed run re-logs them) and a torn last line, by
    rewriting the file atomically; returns how many rows were dropped."""
    rows = layout.read_rows(self.path)
    kept = [json.dumps(r, default=float) for r in rows if r['step'] <= step]
    self._rows = kept
    self._rewrite()
    return len(rows) - len(kept)

  def _rewrite(self) -> None:
    if self._file is not None:
      self._file.close()
    tmp = self.path.with_suffix('.jsonl.tmp')
    tmp.write_text(''.join(r + '\n' for r in self._rows))
    os.replace(tmp, self.path)  # Atomic: a kill here leaves the old or the new file, whole.
    self._file = open(self.path, 'a')
    self._inode = os.fstat(self._file.fileno()).st_ino

  def write(self, step: int, split: str, values: Mapping) -> None:
    line = json.dumps({'step': int(step), 'split': split, **values}, default=float)
    self._rows.append(line)
    if self._file is None:
      self._rewrite()  # Also rewrites a torn last line left by a killed run.
      return
    try:
      replaced = os.stat(self.path).st_ino != self._inode
    except FileNotFoundError:
      replaced = True
    if replaced:
      log.warning('%s was deleted or replaced during the run; wrote it again with all %d rows',
                  self.path, len(self._rows))
      self._rewrite()
      return
    self._file.write(line + '\n')
    self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


class LogWriter:
  """One human-readable log line per row. Each record carries its split (`metric_split`), so
  that a progress display already showing the evaluations can leave their rows out
  (research/run/progress.py)."""

  def write(self, step: int, split: str, values: Mapping) -> None:
    shown = ' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                     for k, v in values.items())
    log.info('step %d %s %s', step, split, shown, extra={'metric_split': split})

  def close(self) -> None:
    pass


class MultiWriter:
  """Fans every row out to several writers."""

  def __init__(self, writers: Iterable[MetricWriter]):
    self.writers = list(writers)

  def write(self, step: int, split: str, values: Mapping) -> None:
    for writer in self.writers:
      writer.write(step, split, values)

  def truncate_after(self, step: int) -> int:
    """Drops rows after `step` from every writer that keeps a file; returns how many."""
    return sum(w.truncate_after(step) for w in self.writers if hasattr(w, 'truncate_after'))

  def close(self) -> None:
    for writer in self.writers:
      writer.close()


def _scalars(values: Mapping) -> dict:
  """The numeric entries of a metric row (bools and text are not curves)."""
  return {k: float(v) for k, v in values.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _summary_writer_class() -> type:
  """tensorboardX's SummaryWriter, imported without PyTorch.

  tensorboardX imports torch whenever it is installed (to accept torch tensors, which nothing
  here passes): with the `[torch]` extra that added ~3 s of CPU to the start of every run
  (cProfile). Hiding torch during that one import makes tensorboardX fall back to NumPy, as it
  does where torch is absent; a process that already imported torch keeps it.
  """
  hidden = 'torch' not in sys.modules
  if hidden:
    sys.modules['torch'] = None  # `import torch` raises ImportError while this is set.
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
  finally:
    if hidden:
      del sys.modules['torch']
  return SummaryWriter


class TensorBoardWriter:
  """Scalars into `logdir/<split>/` event files, one tag per metric (`loss`, `accuracy`, ...).

  One folder per split makes TensorBoard draw train, validation and test as runs on the same
  charts (`tensorboard --logdir WORKDIR`). Written with tensorboardX: no TensorFlow needed.
  Each row is flushed, like the JSONL file, so a killed run leaves both files consistent.
  """

  def __init__(self, logdir: str | os.PathLike):
    self.logdir = pathlib.Path(logdir)
    self._writers: dict = {}  # split -> tensorboardX.SummaryWriter
    self._purge_step: int | None = None

  def truncate_after(self, step: int) -> int:
    """Makes TensorBoard hide points after `step` written by an earlier process (see above)."""
    self.close()
    self._purge_step = step + 1
    if self.logdir.is_dir():  # Every split written so far, even one not written again soon.
      for split_dir in sorted(p for p in self.logdir.iterdir() if p.is_dir()):
        self._writer(split_dir.name)
    return 0  # Nothing is deleted: TensorBoard skips the purged points when it reads.

  def _writer(self, split: str):
    if split not in self._writers:
      # A unique suffix: two writers opened within the same second must not share a file name.
      self._writers[split] = _summary_writer_class()(
          str(self.logdir / split), purge_step=self._purge_step,
          filename_suffix=f'.{time.time_ns()}')
    return self._writers[split]

  def write(self, step: int, split: str, values: Mapping) -> None:
    writer = self._writer(split)
    for name, value in _scalars(values).items():
      writer.add_scalar(name, value, int(step))
    writer.flush()

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


check_wandb = config_lib.check_wandb  # W&B settings that cannot work: stated with the others.


class WandbWriter:
  """Logs rows to a Weights & Biases run as `<split>/<metric>` at their step.

  The run id is kept in `workdir/wandb_run_id`, so a resumed training continues the same W&B run.
  """

  def __init__(self, settings: ml_collections.ConfigDict, workdir: pathlib.Path,
               config: Mapping):
    check_wandb(settings)
    import wandb  # pylint: disable=g-import-not-at-top  (optional dependency)
    id_file = workdir / 'wandb_run_id'
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(8)
    id_file.write_text(run_id + '\n')
    self._run = wandb.init(project=settings.project, entity=settings.entity,
                           mode=settings.mode, dir=str(workdir), id=run_id, resume='allow',
                           name=workdir.name, config=dict(config))

  def write(self, step: int, split: str, values: Mapping) -> None:
    row = {f'{split}/{k}': v for k, v in _scalars(values).items() if math.isfinite(v)}
    self._run.log(row, step=int(step))

  def close(self) -> None:
    self._run.finish()
