"""Input attributions: which parts of an input a model's output depends on.

Every method takes `score`, a function from a batch of inputs [n, ...] to one real number per
example [n] (a class logit, or a regression output; see `target.py`), and returns an array shaped
like the inputs. Each example's score must depend on that example alone (evaluation mode: no
dropout, BatchNorm with stored statistics), so one gradient of the batch's summed score gives
every example's gradient at once.

- `saliency`: the gradient ∂score/∂x (Simonyan et al., 2013).
- `smoothgrad`: the gradient averaged over copies of x with Gaussian noise (Smilkov et al., 2017);
  `noise` is the noise's standard deviation as a fraction of each example's value range.
- `integrated_gradients`: (x − x') · ∫₀¹ ∂score(x' + α(x − x'))/∂x dα (Sundararajan et al.,
  2017), the integral by the midpoint rule over `steps` points. Completeness: the attributions sum
  to score(x) − score(x'), up to the rule's error, which shrinks as `steps` grows
  (`completeness_error` measures it).
- `occlusion`: how much the score drops when a window of positions is set to a baseline value,
  averaged over the windows covering each position (Zeiler & Fergus, 2014): needs no gradient.

Positions: an example of shape (L,) has L positions; one of rank >= 2 is spatial dims followed by
channels (images [H, W, C], signals [L, C]); occlusion hides every channel of a position at once.
"""
import itertools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

Score = Callable[[jnp.ndarray], jnp.ndarray]
BASELINES = ('zeros', 'mean')


def spatial_shape(example_shape: tuple) -> tuple:
  """The positions of one example: (L,) for a signal, the dims before channels otherwise."""
  return tuple(example_shape) if len(example_shape) == 1 else tuple(example_shape[:-1])


def baseline(inputs: np.ndarray, kind: str) -> np.ndarray:
  """The reference input: all zeros (black images, silence), or the examples' mean input."""
  if kind == 'zeros':
    return np.zeros_like(inputs)
  if kind == 'mean':
    return np.broadcast_to(inputs.mean(axis=0, keepdims=True), inputs.shape).copy()
  raise ValueError(f"unknown baseline {kind!r}; allowed: {', '.join(BASELINES)}")


def _gradient(score: Score) -> Callable:
  return jax.jit(jax.grad(lambda x: jnp.sum(score(x))))


def saliency(score: Score, inputs) -> np.ndarray:
  return np.asarray(_gradient(score)(jnp.asarray(inputs)))


def smoothgrad(score: Score, inputs, *, samples: int = 16, noise: float = 0.15,
               seed: int = 0) -> np.ndarray:
  """The mean gradient over `samples` noisy copies; noise std = `noise` × each example's range."""
  x = jnp.asarray(inputs)
  axes = tuple(range(1, x.ndim))
  sigma = noise * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
  grad = _gradient(score)
  keys = jax.random.split(jax.random.PRNGKey(seed), samples)
  total = sum(grad(x + sigma * jax.random.normal(k, x.shape, x.dtype)) for k in keys)
  return np.asarray(total / samples)


def integrated_gradients(score: Score, inputs, reference, *, steps: int = 32) -> np.ndarray:
  """Midpoint-rule integrated gradients along the straight path from `reference` to `inputs`."""
  x, x0 = jnp.asarray(inputs), jnp.asarray(reference, dtype=jnp.asarray(inputs).dtype)
  grad = _gradient(score)

  @jax.jit
  def path_sum(alphas):
    return jax.lax.map(lambda a: grad(x0 + a * (x - x0)), alphas).sum(axis=0)

  alphas = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps
  return np.asarray((x - x0) * path_sum(alphas) / steps)


def completeness_error(score: Score, inputs, reference, attributions) -> np.ndarray:
  """|Σ attributions − (score(x) − score(x'))| per example: integrated gradients' own check."""
  expected = np.asarray(score(jnp.asarray(inputs))) - np.asarray(score(jnp.asarray(reference)))
  total = np.asarray(attributions).reshape(len(expected), -1).sum(axis=1)
  return np.abs(total - expected)


def window_masks(example_shape: tuple, window: int | None = None,
                 stride: int | None = None) -> np.ndarray:
  """Boolean masks [P, *positions] of every occlusion window. Default window: an eighth of each
  dimension (at least 1), stride half the window, so 8x8 digits get 2x2 windows."""
  dims = spatial_shape(example_shape)
  sizes = [window or max(1, round(d / 8)) for d in dims]
  steps = [stride or max(1, s // 2) for s in sizes]
  starts = [sorted(set(range(0, max(d - s, 0) + 1, st)) | {max(d - s, 0)})
            for d, s, st in zip(dims, sizes, steps)]
  masks = []
  for corner in itertools.product(*starts):
    mask = np.zeros(dims, bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, sizes))] = True
    masks.append(mask)
  return np.stack(masks)


def expand(position_values, example_shape: tuple) -> np.ndarray:
  """Per-position values [..., *positions] broadcast over an example's channels."""
  values = np.asarray(position_values)
  if len(example_shape) == 1:
    return values
  return np.broadcast_to(values[..., None], (*values.shape, example_shape[-1]))


def occlude(inputs, reference, position_mask) -> jnp.ndarray:
  """`inputs` with the positions where `position_mask` [n or 1, *positions] is True replaced by
  `reference`'s values."""
  x = jnp.asarray(inputs)
  mask = jnp.asarray(position_mask)
  if x.ndim - 1 > len(spatial_shape(x.shape[1:])):
    mask = mask[..., None]
  return jnp.where(mask, jnp.asarray(reference, x.dtype), x)


def occlusion(score: Score, inputs, reference, *, window: int | None = None,
              stride: int | None = None) -> np.ndarray:
  """The mean drop of the score over the windows covering each position (channels share it)."""
  x = jnp.asarray(inputs)
  masks = window_masks(x.shape[1:], window, stride)
  scored = jax.jit(lambda m: score(occlude(x, reference, m[None])))
  original = np.asarray(score(x))
  drops = np.stack([original - np.asarray(scored(m)) for m in masks])  # [P, n]
  covered = np.maximum(masks.sum(axis=0), 1)
  per_position = np.einsum('pn,p...->n...', drops, masks.astype(drops.dtype)) / covered
  return np.array(expand(per_position, x.shape[1:]))


def per_position(attributions) -> np.ndarray:
  """|attribution| summed over channels: one importance per position [n, *positions]."""
  a = np.abs(np.asarray(attributions))
  return a if a.ndim == 2 else a.sum(axis=-1)


def top_positions(attributions, fraction: float) -> np.ndarray:
  """Boolean [n, *positions]: each example's `fraction` of positions with the largest |attr|."""
  importance = per_position(attributions)
  flat = importance.reshape(len(importance), -1)
  k = max(1, int(round(fraction * flat.shape[1])))
  order = np.argsort(-flat, axis=1, kind='stable')[:, :k]
  mask = np.zeros_like(flat, bool)
  np.put_along_axis(mask, order, True, axis=1)
  return mask.reshape(importance.shape)


def random_positions(shape: tuple, fraction: float, seed: int = 0) -> np.ndarray:
  """Boolean [n, *positions] with `fraction` of each example's positions chosen at random."""
  n, size = shape[0], int(np.prod(shape[1:]))
  k = max(1, int(round(fraction * size)))
  rng = np.random.default_rng(seed)
  mask = np.zeros((n, size), bool)
  for row in mask:
    row[rng.choice(size, k, replace=False)] = True
  return mask.reshape(shape)


def concentration(attributions, fraction: float = 0.1) -> np.ndarray:
  """Share of each example's total |attribution| held by its top `fraction` of positions."""
  importance = per_position(attributions).reshape(len(attributions), -1)
  top = top_positions(attributions, fraction).reshape(importance.shape)
  return (importance * top).sum(axis=1) / np.maximum(importance.sum(axis=1), 1e-12)
