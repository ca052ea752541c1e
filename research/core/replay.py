"""Experience replay in JAX: a circular buffer of transitions, and uniform sampling from it.

A small buffer of our own rather than flashbax (not a dependency here): the whole buffer is one
pytree of fixed-shape arrays plus its write position and fill level, so it lives inside the
compiled chunk of environment steps and updates, `vmap`s over the members of a vectorized group,
and is saved by Orbax with the rest of the agent (contents and position), which is what makes a
resumed run bit-identical. DQN needs only add-a-batch and sample-uniformly: ~50 lines.
"""
import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Buffer:
  """`capacity` transitions (obs, action, reward, next_obs, terminated); `position` is where the
  next one is written, `size` how many are filled (<= capacity)."""
  obs: jax.Array
  action: jax.Array
  reward: jax.Array
  next_obs: jax.Array
  terminated: jax.Array
  position: jax.Array
  size: jax.Array

  @property
  def capacity(self) -> int:
    return self.action.shape[0]


def create(capacity: int, obs_shape: tuple, obs_dtype=jnp.float32) -> Buffer:
  """An empty buffer (zeros) for observations of `obs_shape`, stored as `obs_dtype` (sampled as
  float32)."""
  return Buffer(obs=jnp.zeros((capacity, *obs_shape), obs_dtype),
                action=jnp.zeros((capacity,), jnp.int32),
                reward=jnp.zeros((capacity,), jnp.float32),
                next_obs=jnp.zeros((capacity, *obs_shape), obs_dtype),
                terminated=jnp.zeros((capacity,), jnp.float32),
                position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buffer: Buffer, obs: jax.Array, action: jax.Array, reward: jax.Array,
        next_obs: jax.Array, terminated: jax.Array) -> Buffer:
  """Writes a batch of n transitions (n <= capacity) after the newest, over the oldest once the
  buffer is full."""
  n = action.shape[0]
  new = {'obs': obs, 'action': action, 'reward': reward, 'next_obs': next_obs,
         'terminated': terminated.astype(jnp.float32)}
  if buffer.capacity % n == 0:  # Never wraps inside a batch: one contiguous write (faster).
    write = lambda old, rows: jax.lax.dynamic_update_slice_in_dim(
        old, rows.astype(old.dtype), buffer.position, axis=0)
  else:
    index = (buffer.position + jnp.arange(n)) % buffer.capacity
    write = lambda old, rows: old.at[index].set(rows.astype(old.dtype))
  return buffer.replace(**{name: write(getattr(buffer, name), rows) for name, rows in new.items()},
                        position=(buffer.position + n) % buffer.capacity,
                        size=jnp.minimum(buffer.size + n, buffer.capacity))


def sample(buffer: Buffer, key: jax.Array, batch_size: int) -> dict:
  """`batch_size` transitions drawn uniformly (with replacement) from the filled part."""
  index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
  return {'obs': buffer.obs[index].astype(jnp.float32), 'action': buffer.action[index],
          'reward': buffer.reward[index], 'next_obs': buffer.next_obs[index].astype(jnp.float32),
          'terminated': buffer.terminated[index]}
