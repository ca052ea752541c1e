"""From an agent's config (one with an `env` group) to the parts of its run: the environment, the
Q-network, the optimizer, the DQN settings, and what its metric rows mean (`Returns`).

Every check of an agent's settings is here and runs before anything is written: an unknown
environment (with the closest id), a Q-network whose output is not one value per action, a replay
buffer smaller than a minibatch, ε outside [0, 1], supervised settings (a dataset, a task) in an
agent's config. A loop step is one compiled chunk: `dqn.rollout_length` vectorized steps of
`env.num_envs` environments, so `total_steps` steps are `total_steps * num_envs *
rollout_length` environment steps.
"""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn

from research import config as config_lib, models
from research.config import schema
from research.core import dqn, envs, optim
from research.devices import placement
from research.errors import UserError

LOSSES = ('huber', 'mse')  # The TD error's loss: Huber (the paper's clipped error) or squared.
_SUPERVISED = ('task', 'label_smoothing', 'mask_rate', 'grad_accum_steps', 'steps_per_dispatch',
               'eval_batch_size')


@dataclasses.dataclass(frozen=True)
class Returns:
  """The loop's `task` for an agent: turns a window's metric sums into a train row. A metric
  with no count in the window (no update yet, no episode ended) is left out, not NaN.

  `env_steps` arrives as one (environment steps after the chunk, 1) pair per loop step; a window
  of n steps sums them, and since every step adds the same `env_steps_per_step` E, the last
  value is the mean plus (n - 1) E / 2."""
  env_steps_per_step: int
  name: str = 'dqn'

  def summarize(self, sums: dict) -> dict:
    out = {}
    for name, (total, count) in sums.items():
      total, count = float(total), float(count)
      if count:
        out[name] = total / count
    if 'env_steps' in sums:
      count = float(sums['env_steps'][1])
      out['env_steps'] = int(round(out['env_steps'] + (count - 1) * self.env_steps_per_step / 2))
    if 'return' in sums:
      out['episodes'] = int(round(float(sums['return'][1])))
    return out


@dataclasses.dataclass(frozen=True)
class AgentParts:
  config: ml_collections.ConfigDict  # Resolved.
  env: envs.VecEnv
  model: nn.Module
  optimizer: optax.GradientTransformation
  settings: dqn.Settings
  task: Returns
  devices: placement.Placement

  def init_params(self, key: jax.Array):
    return self.model.init(key, jnp.zeros((1, *self.env.observation_shape)), train=False)['params']


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise UserError(message)


def _check_not_supervised(config: ml_collections.ConfigDict) -> None:
  """An agent reads no dataset: a dataset or supervised setting in its config is a mistake (one
  config mixing two kinds of run), refused rather than silently ignored."""
  defaults = schema.plain(schema.TOP)
  mixed = [f'dataset.{k}={v!r}' for k, v in config.dataset.items()
           if k != 'data_dir' and v != defaults['dataset'].get(k, '<none>')]
  mixed += [f'{k}={config[k]!r}' for k in _SUPERVISED if k in config and config[k] != defaults[k]]
  _check(not mixed, f"config.env.name={config.env.name!r} makes this a reinforcement-learning "
         f"run, which reads no dataset; remove the supervised settings {', '.join(mixed)}")


def _check_settings(config: ml_collections.ConfigDict) -> None:
  env, q = config.env, config.dqn
  for key, value in (('env.num_envs', env.num_envs), ('env.eval_episodes', env.eval_episodes),
                     ('dqn.rollout_length', q.rollout_length), ('dqn.replay_size', q.replay_size),
                     ('dqn.train_every', q.train_every),
                     ('dqn.target_update_every', q.target_update_every),
                     ('dqn.group_devices', q.group_devices)):
    _check(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
           f"config.{key} must be an int >= 1, got {value!r}")
  batch, envs = config.batch_size, env.num_envs
  for holds, message in (
      (q.replay_size >= batch,
       f"config.dqn.replay_size={q.replay_size} is smaller than a minibatch "
       f"(config.batch_size={batch}); use replay_size >= batch_size"),
      (q.replay_size >= envs,
       f"config.dqn.replay_size={q.replay_size} cannot hold one step of config.env.num_envs="
       f"{envs} environments"),
      (q.learning_starts >= batch,
       f"config.dqn.learning_starts={q.learning_starts} must be >= config.batch_size={batch} "
       "(a minibatch needs that many transitions)"),
      (q.train_every >= envs,
       f"config.dqn.train_every={q.train_every} environment steps is less than one vectorized "
       f"step of config.env.num_envs={envs}; at most one update per vectorized step: use "
       f"train_every >= {envs}")):
    _check(holds, message)
  for key in ('epsilon_start', 'epsilon_end'):
    value = q[key]
    _check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0,
           f"config.dqn.{key} must be in [0, 1] (a probability of acting at random), got "
           f"{value!r}")
  _check(q.epsilon_decay_steps >= 0, f"config.dqn.epsilon_decay_steps must be >= 0, got "
         f"{q.epsilon_decay_steps}")
  _check(0.0 < q.tau <= 1.0, f"config.dqn.tau must be in (0, 1] (1: copy the online network), "
         f"got {q.tau}")
  _check(0.0 <= q.gamma <= 1.0, f"config.dqn.gamma must be in [0, 1], got {q.gamma}")
  _check(q.huber_delta > 0, f"config.dqn.huber_delta must be > 0, got {q.huber_delta}")
  _check(config.loss in LOSSES, f"config.loss={config.loss!r} is not a TD loss; an agent "
         f"allows {', '.join(LOSSES)}")
  _check(config.total_steps is not None, "an agent's length is config.total_steps (loop steps "
         "of env.num_envs * dqn.rollout_length environment steps); num_epochs has no meaning")
  _check(config.num_devices in (None, 1), f"config.num_devices={config.num_devices}: an agent "
         "runs on one device (None or 1)")


def check(config: ml_collections.ConfigDict) -> None:
  """Raises UserError for anything wrong with an agent's config, without building it."""
  config_lib.validate(config)
  full = ml_collections.ConfigDict(config_lib.with_defaults(config.to_dict()))
  _check(full.env.name is not None, "config.env.name is not set (a gymnax id, e.g. "
         f"'CartPole-v1'); allowed: {', '.join(sorted(envs.ENVIRONMENTS))}")
  _check_not_supervised(full)
  _check_settings(full)
  if full.env.name not in envs.ENVIRONMENTS:
    envs.make(full.env.name)  # The unknown-name error, with the closest id.
  models.validate(full.model)
  optim.validate(full.optimizer)


def build(config: ml_collections.ConfigDict) -> AgentParts:
  """Checks `config` (an agent's) and builds its parts. Raises UserError for bad input."""
  check(config)
  resolved = config_lib.resolve(config, steps_per_epoch=config.total_steps)
  env = envs.make(resolved.env.name)
  ctx = models.Context(num_outputs=env.num_actions, input_shape=env.observation_shape)
  model = models.build(resolved.model, ctx)
  _check_outputs(model, env, resolved.model.name)
  settings = dqn.Settings.from_config(resolved)
  updates = max(1, resolved.total_steps * settings.env_steps_per_chunk // resolved.dqn.train_every)
  return AgentParts(
      config=resolved, env=env, model=model,
      optimizer=optim.create(resolved.optimizer, updates, resolved.skip_nonfinite),
      settings=settings, task=Returns(settings.env_steps_per_chunk),
      devices=placement.create('mesh', 1))


def _check_outputs(model: nn.Module, env: envs.VecEnv, name: str) -> None:
  """The Q-network must map a batch of observations to one value per action: [batch, actions]."""
  obs = jax.ShapeDtypeStruct((2, *env.observation_shape), jnp.float32)
  try:
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), obs)
    out = jax.eval_shape(lambda v, x: model.apply(v, x), variables, obs)
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # Any family's shape error.
    raise UserError(f"config.model.name={name!r} cannot read {env.name} observations of shape "
                    f"{env.observation_shape}: {str(e).splitlines()[0][:200]}") from None
  expected = (2, env.num_actions)
  _check(tuple(out.shape) == expected,
         f"config.model.name={name!r} outputs {tuple(out.shape)[1:]} per observation, but "
         f"{env.name} has {env.num_actions} actions: a Q-network needs one output per action "
         f"(shape ({env.num_actions},))")
