"""A run's train state: Flax's TrainState plus the run's RNG key and BatchNorm statistics, and the
arrays of it that a checkpoint holds (the functions are rebuilt from the config on restore).
"""
from typing import Any, Callable

import jax
import optax
from flax import struct
from flax.training import train_state


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, optimizer state), the run's base RNG key, and BatchNorm
  statistics (None for models without BatchNorm).

  Step keys are derived from `rng` by folding in the step (and the device index under pmap), so
  the key itself never changes and a resumed run draws the same dropout masks.

  `ema_params`: the exponential moving average of the parameters (None when
  `config.ema.decay` is 0), updated after every step and checkpointed with them. The static
  fields, like `apply_fn` and `tx`, are rebuilt from the config: `augment` (core/augment.py, the
  training batch's augmentation, or None), `ema_decay`, and `eval_ema` (evaluation uses the
  averaged parameters).
  """
  rng: jax.Array
  batch_stats: Any = None
  ema_params: Any = None
  augment: Callable | None = struct.field(pytree_node=False, default=None)
  ema_decay: float = struct.field(pytree_node=False, default=0.0)
  eval_ema: bool = struct.field(pytree_node=False, default=False)

  def with_ema_update(self) -> 'TrainState':
    """`ema_params` moved toward the current parameters: ema ← decay · ema + (1 − decay) · params
    (optax.incremental_update); unchanged without an average."""
    if self.ema_params is None:
      return self
    return self.replace(ema_params=optax.incremental_update(
        self.params, self.ema_params, step_size=1.0 - self.ema_decay))

  @property
  def eval_params(self):
    """The parameters evaluation uses: the average when `eval_ema`, else the trained ones."""
    return self.ema_params if self.eval_ema and self.ema_params is not None else self.params


def state_to_save(state: TrainState) -> dict:
  """The checkpointed part of a train state: arrays only (functions are rebuilt from config)."""
  saved = {'step': state.step, 'params': state.params, 'opt_state': state.opt_state,
           'rng': state.rng}
  if state.batch_stats is not None:
    saved['batch_stats'] = state.batch_stats
  if state.ema_params is not None:
    saved['ema_params'] = state.ema_params
  return saved


def state_from_saved(template: TrainState, saved: dict) -> TrainState:
  return template.replace(**saved)
