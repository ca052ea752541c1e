"""Deep Q-learning (Mnih et al., 2015, "Human-level control through deep reinforcement learning"),
pure JAX: the agent's state, one compiled chunk of acting and learning, greedy evaluation.

One iteration of a chunk: every one of `num_envs` environments takes an ε-greedy action (ε falls
linearly from `epsilon_start` to `epsilon_end` over `epsilon_decay_steps` environment steps), the
transitions go into the replay buffer (core/replay.py), and, once `learning_starts` transitions
were collected, every `train_every` environment steps one minibatch of `batch_size` transitions
is sampled and the Q-network takes one optimizer step on the Huber loss of its TD error against
a target network (`double`: the online network picks the next action, the target network values
it — van Hasselt et al., 2016). Every `target_update_every` environment steps the target network
moves to the online one: a copy (`tau` = 1, as in the paper) or Polyak averaging (`tau` < 1).
`chunk` runs `rollout_length` iterations under `lax.scan`: one dispatch, no Python per step.

Everything that changes is in `AgentState`, so a checkpoint of it resumes bit-identically.
"""
import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from research.core import envs, replay


@dataclasses.dataclass(frozen=True)
class Settings:
  """The agent's hyper-parameters (config.env / config.dqn and batch_size), as Python values:
  compiled into the chunk as constants. Intervals and budgets count environment steps."""
  num_envs: int
  rollout_length: int
  replay_size: int
  batch_size: int
  learning_starts: int
  train_every: int
  target_update_every: int
  tau: float
  gamma: float
  double: bool
  huber_delta: float
  loss: str  # 'huber' (the paper's clipped TD error) or 'mse'.
  epsilon_start: float
  epsilon_end: float
  epsilon_decay_steps: int

  @classmethod
  def from_config(cls, cfg) -> "Settings":
    dqn = cfg.dqn
    return Settings(num_envs=cfg.env.num_envs, batch_size=cfg.batch_size, loss=cfg.loss,
                    **{f.name: dqn[f.name] for f in dataclasses.fields(Settings)
                       if f.name not in ('num_envs', 'batch_size', 'loss')})

  @property
  def env_steps_per_chunk(self) -> int:
    return self.num_envs * self.rollout_length


@flax.struct.dataclass
class AgentState:
  """Online and target parameters, optimizer state, replay buffer, the environments' states and
  observations, the returns and lengths of the episodes under way, the RNG key, and counters."""
  params: Any
  target_params: Any
  opt_state: Any
  buffer: replay.Buffer
  env_state: Any
  obs: jax.Array
  episode_return: jax.Array
  episode_length: jax.Array
  rng: jax.Array
  env_steps: jax.Array
  updates: jax.Array


def epsilon(s: Settings, env_steps: jax.Array) -> jax.Array:
  """The linear ε schedule at `env_steps` environment steps."""
  fraction = jnp.minimum(env_steps / max(s.epsilon_decay_steps, 1), 1.0)
  return s.epsilon_start + fraction * (s.epsilon_end - s.epsilon_start)


def init(s: Settings, env: envs.VecEnv, params: Any, tx: optax.GradientTransformation,
         key: jax.Array) -> AgentState:
  """A fresh agent: the target network equal to the online one, an empty buffer, fresh episodes."""
  reset_key, rng = jax.random.split(key)
  obs, env_state = env.reset(jax.random.split(reset_key, s.num_envs))
  return AgentState(
      params=params, target_params=params, opt_state=tx.init(params),
      buffer=replay.create(s.replay_size, env.observation_shape, env.storage_dtype),
      env_state=env_state, obs=obs,
      episode_return=jnp.zeros((s.num_envs,), jnp.float32),
      episode_length=jnp.zeros((s.num_envs,), jnp.int32), rng=rng,
      env_steps=jnp.zeros((), jnp.int32), updates=jnp.zeros((), jnp.int32))


def td_loss(s: Settings, apply_fn: Callable, params: Any, target_params: Any,
            batch: dict) -> jax.Array:
  """Mean Huber (or squared: `loss='mse'`, halved) loss of Q(obs, action) against
  r + γ (1 - terminated) max_a' Q_target(next, a') (Double DQN: Q_target(next, argmax_a' Q(next,
  a')))."""
  q = apply_fn({'params': params}, batch['obs'])
  q_taken = jnp.take_along_axis(q, batch['action'][:, None], axis=1)[:, 0]
  q_next = apply_fn({'params': target_params}, batch['next_obs'])
  if s.double:
    best = apply_fn({'params': params}, batch['next_obs']).argmax(-1)
    next_value = jnp.take_along_axis(q_next, best[:, None], axis=1)[:, 0]
  else:
    next_value = q_next.max(-1)
  target = batch['reward'] + s.gamma * (1.0 - batch['terminated']) * next_value
  target = jax.lax.stop_gradient(target)
  if s.loss == 'mse':
    return (0.5 * (q_taken - target) ** 2).mean()
  return optax.huber_loss(q_taken, target, delta=s.huber_delta).mean()


def _crossed(before: jax.Array, after: jax.Array, every: int) -> jax.Array:
  """Whether the environment-step counter passed a multiple of `every` going before -> after."""
  return after // every > before // every


def chunk(s: Settings, env: envs.VecEnv, apply_fn: Callable, tx: optax.GradientTransformation,
          state: AgentState) -> tuple[AgentState, dict]:
  """`rollout_length` iterations of acting and learning; returns the new state and the chunk's
  metric sums ((sum, count) pairs): loss and gradient norm of its updates, return and length of
  the episodes that ended in it, mean ε, and the environment steps taken so far."""

  def update(state: AgentState, key: jax.Array) -> tuple[AgentState, jax.Array, jax.Array]:
    batch = replay.sample(state.buffer, key, s.batch_size)
    loss, grads = jax.value_and_grad(
        lambda p: td_loss(s, apply_fn, p, state.target_params, batch))(state.params)
    changes, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, changes)
    return (state.replace(params=params, opt_state=opt_state, updates=state.updates + 1),
            loss, optax.tree.norm(grads))

  def skip(state: AgentState, key: jax.Array) -> tuple[AgentState, jax.Array, jax.Array]:
    del key
    return state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

  def iteration(state: AgentState, _) -> tuple[AgentState, dict]:
    rng, explore_key, action_key, env_key, sample_key = jax.random.split(state.rng, 5)
    eps = epsilon(s, state.env_steps)
    greedy = apply_fn({'params': state.params}, state.obs).argmax(-1)
    random_action = jax.random.randint(action_key, greedy.shape, 0, env.num_actions)
    explore = jax.random.uniform(explore_key, greedy.shape) < eps
    action = jnp.where(explore, random_action, greedy).astype(jnp.int32)
    out = env.step(jax.random.split(env_key, s.num_envs), state.env_state, action)
    buffer = replay.add(state.buffer, state.obs, action, out['reward'], out['final_obs'],
                        out['terminated'])
    episode_return = state.episode_return + out['reward']
    episode_length = state.episode_length + 1
    done = out['done'].astype(jnp.float32)
    ended = done.sum()
    before, after = state.env_steps, state.env_steps + s.num_envs
    state = state.replace(
        buffer=buffer, env_state=out['state'], obs=out['obs'], rng=rng, env_steps=after,
        episode_return=jnp.where(out['done'], 0.0, episode_return),
        episode_length=jnp.where(out['done'], 0, episode_length))
    learning = after >= s.learning_starts
    do_update = learning & _crossed(before, after, s.train_every)
    state, loss, grad_norm = jax.lax.cond(do_update, update, skip, state, sample_key)
    do_target = learning & _crossed(before, after, s.target_update_every)
    target = jax.tree.map(lambda t, p: jnp.where(do_target, s.tau * p + (1.0 - s.tau) * t, t),
                          state.target_params, state.params)
    state = state.replace(target_params=target)
    updated = do_update.astype(jnp.float32)
    sums = {'loss': (loss, updated), 'grad_norm': (grad_norm, updated),
            'return': ((episode_return * done).sum(), ended),
            'length': ((episode_length * done).sum(), ended),
            'epsilon': (eps, jnp.ones(()))}
    return state, sums

  state, per_iteration = jax.lax.scan(iteration, state, None, length=s.rollout_length)
  sums = jax.tree.map(lambda x: x.sum(0), per_iteration)
  sums['env_steps'] = (state.env_steps.astype(jnp.float32), jnp.ones(()))
  return state, sums


def evaluate(env: envs.VecEnv, apply_fn: Callable, params: Any, key: jax.Array,
             episodes: int) -> tuple[jax.Array, jax.Array]:
  """Returns and lengths [episodes] of the greedy policy (ε = 0) over `episodes` fresh episodes
  started from `key`; each is followed to its end (at most the environment's time limit)."""
  obs, env_state = env.reset(jax.random.split(key, episodes))

  def step(carry, step_key):
    obs, env_state, alive, total, length = carry
    action = apply_fn({'params': params}, obs).argmax(-1).astype(jnp.int32)
    out = env.step(jax.random.split(step_key, episodes), env_state, action)
    total = total + out['reward'] * alive
    length = length + alive.astype(jnp.int32)
    alive = alive & ~out['done']
    return (out['obs'], out['state'], alive, total, length), None

  carry = (obs, env_state, jnp.ones((episodes,), bool), jnp.zeros((episodes,), jnp.float32),
           jnp.zeros((episodes,), jnp.int32))
  keys = jax.random.split(jax.random.fold_in(key, 1), env.max_episode_steps)
  (_, _, _, total, length), _ = jax.lax.scan(step, carry, keys)
  return total, length
