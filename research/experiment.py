"""From a config to the parts of an experiment: data, model, loss, optimizer, devices, state.

`train`, `eval` and `load` all start here, so a checkpoint is always read back into exactly the
structure that wrote it.
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn
from flax.training import train_state

from research import config as config_lib
from research import data, losses, models, optim, parallel


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, optimizer state) plus the run's base RNG key.

  Step keys are derived from `rng` by folding in the step (and the device index under pmap), so
  the key itself never changes and a resumed run draws the same dropout masks.
  """
  rng: jax.Array


@dataclasses.dataclass(frozen=True)
class Experiment:
  config: ml_collections.ConfigDict  # Resolved: total_steps, data_dir, intervals filled in.
  info: data.DatasetInfo
  model: nn.Module
  loss_fn: Callable
  optimizer: optax.GradientTransformation
  devices: parallel.DataParallel

  @property
  def process_batch_size(self) -> int:
    return self.config.batch_size // jax.process_count()

  def init_state(self) -> TrainState:
    """Fresh parameters and optimizer state, on the host's default device (not yet replicated)."""
    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(self.config.seed))
    dummy = jnp.zeros((1,) + tuple(self.info.input_shape), jnp.float32)
    variables = jax.jit(lambda k: self.model.init(k, dummy, train=False))(init_key)
    return TrainState.create(apply_fn=self.model.apply, params=variables['params'],
                             tx=self.optimizer, rng=dropout_key)


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Validates `config`, prepares its dataset, and builds everything a run needs.

  Raises `UserError` for anything wrong with the config, the data or the device layout.
  """
  config_lib.validate(config)
  devices = parallel.create(config.parallel, config.get('num_devices'))
  devices.check_batch(config.batch_size)
  info = data.prepare(config.dataset)
  resolved = config_lib.resolve(config, data.steps_per_epoch(info, config.batch_size))
  model = models.build(resolved.model, info.num_classes)
  return Experiment(
      config=resolved, info=info, model=model, loss_fn=losses.LOSSES[resolved.loss],
      optimizer=optim.create(resolved.optimizer, resolved.total_steps), devices=devices)


def state_to_save(state: TrainState) -> dict:
  """The checkpointed part of a train state: arrays only (functions are rebuilt from config)."""
  return {'step': state.step, 'params': state.params, 'opt_state': state.opt_state,
          'rng': state.rng}


def state_from_saved(template: TrainState, saved: dict) -> TrainState:
  return template.replace(**saved)
