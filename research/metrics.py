"""Metrics: (sum, count) accumulation, and writers that record one row per (step, split).

Steps return metric *sums* as (sum, count) pairs (`loss`, `accuracy`, ...) plus the example
`count`, already reduced across devices; means are taken only on the host, once the sums of a
whole window or split are in. That keeps padded evaluation batches and sharded batches exact.
"""
import json
import logging
import os
import pathlib
import time
from typing import Iterable, Mapping, Protocol

import jax
import numpy as np

from research import rundir

log = logging.getLogger('research')


def add_sums(total: dict | None, new: Mapping) -> dict:
  """Adds two trees of metric sums ((sum, count) pairs and plain counts), host or device."""
  if total is None:
    return dict(new)
  return jax.tree.map(lambda a, b: a + b, dict(total), dict(new))


def means(sums: Mapping) -> dict:
  """(sum, count) pairs → sum / count; plain values (the example count) → int."""
  out = {}
  for name, value in sums.items():
    if isinstance(value, (tuple, list)):
      total, count = (float(np.asarray(v, dtype=np.float64)) for v in value)
      out[name] = total / count if count else float('nan')
    else:
      out[name] = int(round(float(np.asarray(value))))
  return out


def sum_window(window: Iterable[Mapping]) -> dict:
  """Sums a list of per-step metric sums on the host, in float64 (one fetch per window)."""
  host = jax.device_get(list(window))
  total = None
  for sums in host:
    total = add_sums(total, jax.tree.map(lambda v: np.asarray(v, np.float64), sums))
  return total


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
    self._rows = [json.dumps(row, default=float) for row in rundir.read_rows(self.path)]
    self._file = None

  def truncate_after(self, step: int) -> int:
    """Drops rows logged after `step` (a resumed run re-logs them) and a torn last line, by
    rewriting the file atomically; returns how many rows were dropped."""
    rows = rundir.read_rows(self.path)
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
  (research/progress.py)."""

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


class Stopwatch:
  """Accumulates the wall time of the segments it is told to time (training steps only)."""

  def __init__(self):
    self.seconds, self._start = 0.0, None

  def start(self) -> None:
    self._start = time.perf_counter()

  def stop(self) -> None:
    if self._start is not None:
      self.seconds += time.perf_counter() - self._start
      self._start = None
