"""A run's train state: Flax's TrainState plus the run's RNG key and BatchNorm statistics, and the
arrays of it that a checkpoint holds (the functions are rebuilt from the config on restore).
"""
from typing import Any

import jax
from flax.training import train_state


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, optimizer state), the run's base RNG key, and BatchNorm
  statistics (None for models without BatchNorm).

  Step keys are derived from `rng` by folding in the step (and the device index under pmap), so
  the key itself never changes and a resumed run draws the same dropout masks.
  """
  rng: jax.Array
  batch_stats: Any = None


def state_to_save(state: TrainState) -> dict:
  """The checkpointed part of a train state: arrays only (functions are rebuilt from config)."""
  saved = {'step': state.step, 'params': state.params, 'opt_state': state.opt_state,
           'rng': state.rng}
  if state.batch_stats is not None:
    saved['batch_stats'] = state.batch_stats
  return saved


def state_from_saved(template: TrainState, saved: dict) -> TrainState:
  return template.replace(**saved)
