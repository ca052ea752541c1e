"""Orbax checkpoints of a run: train state + the grain data iterator, in one step directory.

`workdir/checkpoints/<step>/` holds two items: `state` (params, optimizer state, step, RNG key,
as host arrays through Orbax's StandardCheckpointHandler) and `data` (the grain iterator's
position, through grain's own Orbax handler). Saving both in one step makes a resumed run read
exactly the batches the uninterrupted run would have read. Saves are asynchronous: training goes
on while the arrays are written, and Orbax commits a step only when all of it is on disk.
"""
import contextlib
import logging
import pathlib
import re
from typing import Any, Iterator

import grain
import orbax.checkpoint as ocp

from research.errors import UserError
from research.rundir import layout

STATE, DATA = 'state', 'data'
DAMAGED = layout.DAMAGED
COMMIT_MARKER = 'commit_success.txt'
log = logging.getLogger('research')
# How the OS words the disk troubles a save can run into (tensorstore quotes strerror).
_DISK_ERRORS = re.compile(r'No space left on device|File too large|Disk quota exceeded|'
                          r'Permission denied|Read-only file system|Input/output error')


_REMOVED = 'removed while it was being read (a running training keeps only its newest steps)'


def _reason(error: BaseException) -> str:
  """One short line of why a restore failed (TensorStore appends a page of its spec)."""
  line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  return line.split(' See full TensorStore details')[0][:160]


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (full disk, quota, permissions); older ones are intact."""


class _DropMessage(logging.Filter):
  """Drops the records whose message starts with a given text."""

  def __init__(self, start: str):
    super().__init__()
    self._start = start

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(self._start)


@contextlib.contextmanager
def _without_log(logger: str, start: str) -> Iterator[None]:
  """Drops `logger`'s records whose message starts with `start`, within the block."""
  dropped = _DropMessage(start)
  logging.getLogger(logger).addFilter(dropped)
  try:
    yield
  finally:
    logging.getLogger(logger).removeFilter(dropped)


class Checkpointer:
  """The checkpoints of one workdir."""

  def __init__(self, workdir: str | pathlib.Path, keep: int = 3, async_save: bool = True,
               data_streams: int = 1, read_only: bool = False):
    """`data_streams`: how many data iterators each step saves (a vectorized group has one per
    distinct seed); they are the items `data`, `data_1`, `data_2`, ..., so a single run's
    checkpoint keeps its one `data` item.

    `read_only`: for reading a workdir that a training may be writing meanwhile (`research
    eval`): Orbax's read-only mode creates, saves and deletes nothing (`keep` is ignored), and
    `restore_newest_good` moves no damaged step aside."""
    self.directory = pathlib.Path(workdir).absolute() / layout.CHECKPOINTS
    self.read_only = read_only
    self._data_items = (DATA,) + tuple(f'{DATA}_{i}' for i in range(1, data_streams))
    if read_only:  # The settings read-only mode would otherwise override, with a warning each.
      options = ocp.CheckpointManagerOptions(
          read_only=True, create=False, max_to_keep=None, save_interval_steps=0,
          enable_async_checkpointing=False)
    else:
      options = ocp.CheckpointManagerOptions(
          max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    with _without_log('absl', 'Given directory is read only'):  # Orbax's warning, every time.
      self._manager = ocp.CheckpointManager(
          self.directory, options=options,
          item_handlers={STATE: ocp.StandardCheckpointHandler(),
                         **{item: grain.checkpoint.CheckpointHandler()
                            for item in self._data_items}})

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """The steps listed when this Checkpointer was made (or last reloaded), oldest first."""
    return sorted(self._manager.all_steps())

  def _data_args(self, iterators: tuple, arg_type: type) -> dict:
    if len(iterators) not in (0, len(self._data_items)):
      raise ValueError(f'{len(iterators)} data iterators for {len(self._data_items)} data items')
    return {item: arg_type(it) for item, it in zip(self._data_items, iterators)}

  def save(self, step: int, state: Any, *data_iterators: Any) -> None:
    """Starts writing `state` (a pytree of host arrays) and the iterator positions at `step`.

    A save that fails in the background (full disk) surfaces here, at the next save, or in
    `wait`, as a `CheckpointWriteError`; Orbax writes into a temporary directory, so a failed
    save never replaces or damages a committed step.
    """
    try:
      self._manager.save(step, args=ocp.args.Composite(**{
          STATE: ocp.args.StandardSave(state),
          **self._data_args(data_iterators, grain.checkpoint.CheckpointSave)}), force=True)
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(e) from e

  def _write_error(self, error: Exception) -> Exception:
    """A clear CheckpointWriteError for disk trouble; any other error unchanged."""
    found = _DISK_ERRORS.search(str(error))
    if found is None and not isinstance(error, OSError):
      return error
    reason = found.group(0) if found else (error.strerror or str(error))
    committed = sorted(s for s in self._manager.all_steps()
                       if (self.directory / str(s)).is_dir())
    return CheckpointWriteError(
        f"could not write a checkpoint under {self.directory}: {reason}. The checkpoints "
        f"already there ({', '.join(map(str, committed)) or 'none'}) are intact; free disk space "
        "or fix the permissions, then rerun the same command to resume")

  def restore(self, step: int, state_target: Any, *data_iterators: Any) -> Any:
    """Restores the state into the structure of `state_target`; moves the iterators (if given)
    in place."""
    items = {STATE: ocp.args.StandardRestore(state_target),
             **self._data_args(data_iterators, grain.checkpoint.CheckpointRestore)}
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # pylint: disable=broad-except  # TensorStore raises plain Exception.
      raise UserError(f"checkpoint {self.directory / str(step)} does not match this run's "
                      f"model or is damaged: {_reason(e)}") from e
    return restored[STATE]

  def restore_newest_good(self, state_target: Any, *data_iterators: Any) -> tuple[int, Any]:
    """Restores the newest checkpoint that reads back whole; returns (step, state).

    A damaged step (a truncated or missing array file, unreadable metadata) is skipped and the
    next older one tried; once one restores, the damaged steps are moved (never deleted) to
    `workdir/checkpoints.damaged/`, with a warning naming each. Orbax writes into a
    temporary directory and renames it when complete, so an interrupted save never shows up as
    a step at all. Read-only, nothing is moved: each skipped step is one warning line, and a
    step that disappears while it is read (a running training's clean-up of old steps) is
    skipped the same way. Raises UserError when no step can be restored.
    """
    errors = []
    steps = sorted(self._manager.all_steps(), reverse=True)
    # Orbax marks a finished step with a commit file; when steps carry it, one without it was
    # never finished (some file systems cannot rename atomically), whatever else it holds.
    marked = any((self.directory / str(s) / COMMIT_MARKER).exists() for s in steps)
    for step in steps:
      if not (self.directory / str(step)).is_dir():
        errors.append((step, _REMOVED))
        continue
      if marked and not (self.directory / str(step) / COMMIT_MARKER).exists():
        errors.append((step, f'no {COMMIT_MARKER}: the save never finished'))
        continue
      try:
        restored = self.restore(step, state_target, *data_iterators)
      except Exception as e:  # pylint: disable=broad-except
        removed = not (self.directory / str(step)).is_dir()
        errors.append((step, _REMOVED if removed else _reason(e.__cause__ or e)))
        continue
      if self.read_only:
        for bad, reason in errors:
          log.warning('checkpoint %s skipped (%s); read step %d instead, nothing moved',
                      self.directory / str(bad), reason, step)
      else:
        self._set_aside(errors, step)
      return step, restored
    advice = '' if self.read_only else '; move the directory aside to start afresh'
    raise UserError(f"no checkpoint in {self.directory} can be restored "
                    f"({'; '.join(f'{s}: {r}' for s, r in errors) or 'none is kept'}){advice}")

  def _set_aside(self, errors: list, restored_step: int) -> None:
    """Moves the damaged steps to checkpoints.damaged/, so the resumed run can save them again."""
    for bad, reason in errors:
      if reason == _REMOVED:
        continue
      kept = self.directory.parent / DAMAGED / str(bad)
      kept.parent.mkdir(exist_ok=True)
      for copy in range(1, 1000):  # The same step may have been damaged before.
        if not kept.exists():
          break
        kept = kept.with_name(f'{bad}.{copy}')
      (self.directory / str(bad)).rename(kept)
      log.warning('checkpoint %s cannot be restored (%s); moved it to %s and resumed from '
                  'step %d', self.directory / str(bad), reason, kept, restored_step)
    if errors:
      self._manager.reload()

  def wait(self) -> None:
    """Blocks until every started save is committed to disk."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(e) from e

  def close(self) -> None:
    self._manager.close()

  def __enter__(self) -> 'Checkpointer':
    return self

  def __exit__(self, error_type, error, traceback) -> None:
    """Closes the manager (waiting for a save in flight, stopping Orbax's threads) however the
    block ended; when the block failed, its own error is the one reported."""
    if error_type is None:
      self.close()
      return
    with contextlib.suppress(Exception):
      self.close()
