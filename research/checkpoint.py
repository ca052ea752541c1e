"""Orbax checkpoints of a run: train state + the grain data iterator, in one step directory.

`workdir/checkpoints/<step>/` holds two items: `state` (params, optimizer state, step, RNG key,
as host arrays through Orbax's StandardCheckpointHandler) and `data` (the grain iterator's
position, through grain's own Orbax handler). Saving both in one step makes a resumed run read
exactly the batches the uninterrupted run would have read. Saves are asynchronous: training goes
on while the arrays are written, and Orbax commits a step only when all of it is on disk.
"""
import logging
import pathlib
from typing import Any

import grain
import orbax.checkpoint as ocp

from research.errors import UserError

STATE, DATA = 'state', 'data'
DAMAGED = 'checkpoints.damaged'
log = logging.getLogger('research')


class Checkpointer:
  """The checkpoints of one workdir."""

  def __init__(self, workdir: str | pathlib.Path, keep: int = 3, async_save: bool = True):
    self.directory = pathlib.Path(workdir).absolute() / 'checkpoints'
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={STATE: ocp.StandardCheckpointHandler(),
                       DATA: grain.checkpoint.CheckpointHandler()})

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_iterator: Any) -> None:
    """Starts writing `state` (a pytree of host arrays) and the iterator position at `step`."""
    self._manager.save(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardSave(state),
        DATA: grain.checkpoint.CheckpointSave(data_iterator)}), force=True)

  def restore(self, step: int, state_target: Any, data_iterator: Any | None = None) -> Any:
    """Restores the state into the structure of `state_target`; moves the iterator in place."""
    items = {STATE: ocp.args.StandardRestore(state_target)}
    if data_iterator is not None:
      items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except (ValueError, KeyError, FileNotFoundError) as e:
      raise UserError(f"checkpoint {self.directory / str(step)} does not match this run's "
                      f"model or is damaged: {str(e).splitlines()[0]}") from e
    return restored[STATE]

  def restore_newest_good(self, state_target: Any, data_iterator: Any) -> tuple[int, Any]:
    """Restores the newest checkpoint that reads back whole; returns (step, state).

    A damaged step (a truncated or missing array file, unreadable metadata) is skipped and the
    next older one tried; once one restores, the damaged steps are moved (never deleted) to
    `workdir/checkpoints.damaged/`, with a warning naming each. Orbax writes into a
    temporary directory and renames it when complete, so an interrupted save never shows up as
    a step at all. Raises UserError when no step can be restored.
    """
    errors = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self.restore(step, state_target, data_iterator)
      except Exception as e:  # pylint: disable=broad-except
        reason = (str(e).splitlines()[0] if str(e) else type(e).__name__)[:160]
        errors.append((step, reason))
        continue
      for bad, reason in errors:  # Set aside, so the resumed run can save those steps again.
        kept = self.directory.parent / DAMAGED / str(bad)
        kept.parent.mkdir(exist_ok=True)
        (self.directory / str(bad)).rename(kept)
        log.warning('checkpoint %s cannot be restored (%s); moved it to %s and resumed from '
                    'step %d', self.directory / str(bad), reason, kept, step)
      if errors:
        self._manager.reload()
      return step, restored
    raise UserError(f"no checkpoint in {self.directory} can be restored "
                    f"({'; '.join(f'{s}: {r}' for s, r in errors)}); move the directory aside "
                    "to start afresh")

  def wait(self) -> None:
    """Blocks until every started save is committed to disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
