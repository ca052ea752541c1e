"""Environments written in JAX (gymnax), many stepped in parallel with `vmap`, with auto-reset.

`make(name)` gives a `VecEnv` for a gymnax environment id with discrete actions (`env.name` of
an agent's config: CartPole-v1, Acrobot-v1, the MinAtar games, ...). Its `reset` and `step` take
a batch of keys and return a batch of everything, so one call steps `num_envs` environments, and
they are pure functions: an agent's chunk of steps compiles into one program (core/dqn.py).

gymnax's own `step` already resets an environment whose episode ended and hands back the
observation the episode ended on (`final_observation`): a replay buffer needs that one as the
transition's next observation, and a reset one in its place would teach the agent that the
episode went on. Termination (the pole fell: no future reward) and truncation (the time limit:
the future was cut, not ended) are kept apart, so that only termination stops bootstrapping.
"""
import dataclasses
import importlib
from typing import Any

import jax
import jax.numpy as jnp

from research.errors import UserError, unknown

# gymnax ids with discrete actions and array observations that a Q-network reads (bandits,
# continuous actions, and Seaquest, which gymnax marks unfinished, are left out).
ENVIRONMENTS = ('CartPole-v1', 'Acrobot-v1', 'MountainCar-v0', 'Asterix-MinAtar',
                'Breakout-MinAtar', 'Freeway-MinAtar', 'SpaceInvaders-MinAtar')


@dataclasses.dataclass(frozen=True)
class VecEnv:
  """A gymnax environment and its parameters, stepped as a batch (vmap over the first axis)."""
  name: str
  env: Any
  params: Any

  @property
  def num_actions(self) -> int:
    return int(self.env.num_actions)

  @property
  def observation_shape(self) -> tuple:
    return tuple(self.env.observation_space(self.params).shape)

  @property
  def storage_dtype(self):
    """What a replay buffer stores observations as: uint8 for binary ones (MinAtar's 0/1
    frames: a quarter of float32's memory and checkpoint size), float32 otherwise."""
    space = self.env.observation_space(self.params)
    binary = jnp.ndim(space.low) == 0 and float(space.low) == 0 and float(space.high) == 1
    return jnp.uint8 if binary else jnp.float32

  @property
  def max_episode_steps(self) -> int:
    """The time limit of an episode (an evaluation steps at most this many times)."""
    return int(self.params.max_steps_in_episode)

  def reset(self, keys: jax.Array) -> tuple[jax.Array, Any]:
    """Observations [N, ...] (float32) and states of N fresh episodes, one per key."""
    obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, self.params)
    return obs.astype(jnp.float32), state

  def step(self, keys: jax.Array, state: Any, actions: jax.Array) -> dict:
    """One step of N environments. Returns a dict: `obs` (the next observation, of a new episode
    where one ended), `state`, `reward`, `terminated`, `truncated`, `done` (either), and
    `final_obs` (the observation the step led to, before any reset: a transition's next
    observation)."""
    obs, state, reward, terminated, truncated, info = jax.vmap(
        self.env.step, in_axes=(0, 0, 0, None))(keys, state, actions, self.params)
    return {'obs': obs.astype(jnp.float32), 'state': state,
            'reward': reward.astype(jnp.float32), 'terminated': terminated,
            'truncated': truncated, 'done': jnp.logical_or(terminated, truncated),
            'final_obs': info['final_observation'].astype(jnp.float32)}


def make(name: str) -> VecEnv:
  """The environment `name` (a gymnax id); UserError with the closest id for an unknown one."""
  if name not in ENVIRONMENTS:
    raise unknown('config.env.name', name, ENVIRONMENTS)
  try:
    gymnax = importlib.import_module('gymnax')
  except ImportError as e:  # pragma: no cover - gymnax is a dependency.
    raise UserError(f"config.env.name={name!r} needs gymnax: pip install gymnax ({e})") from None
  env, params = gymnax.make(name)
  return VecEnv(name=name, env=env, params=params)
