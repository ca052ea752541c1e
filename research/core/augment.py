"""Training-batch augmentation as pure JAX, applied inside the train step (core/steps.py).

`config.augment` lists operations in order, each 'name' or 'name:key=value,...':

    images [H, W, C]   crop:pad=2  flip:p=0.5  affine:rotate=10,scale=0.1,translate=0.1
                       cutout:size=3  cutmix:alpha=1.0
    1-D signals [L]    shift:max=4  scale:max=0.2 (time stretch)   (the MNIST-1D paper's)
    both               noise:std=0.05  mixup:alpha=0.2

Why inside the step and not as grain transforms: the step is the one place that every path of
training runs through, the host-fed grain iterator, a device-resident dataset scanned many steps a
dispatch (research/data/resident*.py) and vmapped seed groups alike, so one implementation serves
them all and costs no host work. The randomness is the step's own: a key folded from the run's RNG
key, the step and (per example) the example's index in the global batch, so an augmented batch
depends only on (seed, step, batch) and a resumed run draws exactly the same augmentations, without
any extra state in the checkpoint. Evaluation never calls it.

mixup and cutmix mix each example with another of the batch (a permutation) with one weight λ ~
Beta(α, α) per batch and put soft targets (λ y_i + (1 − λ) y_j) into `batch['soft_label']`, which
the classification task hands to the loss (core/losses.py takes soft targets).
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from research.core import opspec
from research.errors import UserError, unknown

# The stream of the step's key that augmentation draws from (dropout and masking use others).
STREAM = 0xA06


@dataclasses.dataclass(frozen=True)
class Op:
  kind: str  # 'image', 'signal', 'any': which inputs it applies to.
  per_example: bool
  defaults: dict
  doc: str


OPS = {
    'crop': Op('image', True, {'pad': 2}, 'random crop of the zero-padded image (pad pixels)'),
    'flip': Op('image', True, {'p': 0.5}, 'horizontal flip with probability p'),
    'affine': Op('image', True, {'rotate': 10.0, 'scale': 0.1, 'translate': 0.1},
                 'rotation (± degrees), zoom (± fraction), shift (± fraction of the size)'),
    'cutout': Op('image', True, {'size': 3}, 'a size×size square set to 0 at a random place'),
    'shift': Op('signal', True, {'max': 4}, 'shift along the sequence by up to ± max steps'),
    'scale': Op('signal', True, {'max': 0.2}, 'stretch the sequence in time by 1 ± max'),
    'noise': Op('any', True, {'std': 0.05}, 'add Gaussian noise of this std'),
    'mixup': Op('any', False, {'alpha': 0.2}, 'mix pairs of examples and their targets'),
    'cutmix': Op('image', False, {'alpha': 1.0}, 'paste a box of another example, mix targets'),
}


def build(specs, input_shape: tuple, input_dtype: str, num_classes: int | None,
          task: str) -> Callable | None:
  """fn(batch, key) -> batch for `config.augment` (None when empty); UserError for an unknown
  op or parameter, or an op that does not apply to this input."""
  if isinstance(specs, str):
    specs = (specs,)
  ops = []
  rank = len(input_shape)
  kind = 'image' if rank == 3 else 'signal' if rank in (1, 2) else None
  for i, spec in enumerate(specs):
    where = f'config.augment[{i}]'
    name, args = opspec.parse(spec, where)
    if name not in OPS:
      raise unknown(f'{where} operation', name, OPS)
    op = OPS[name]
    for key in args:
      if key not in op.defaults:
        raise unknown(f'{where} parameter of {name!r}', key, op.defaults)
    if not str(input_dtype).startswith('float') or kind is None or (
        op.kind != 'any' and op.kind != kind):
      allowed = [n for n, o in OPS.items() if kind and o.kind in ('any', kind)] if (
          str(input_dtype).startswith('float')) else []
      raise UserError(f"{where}={spec!r} does not apply to inputs of shape {tuple(input_shape)} "
                      f"({input_dtype}); ops for these inputs: {', '.join(allowed) or 'none'}")
    if not op.per_example and (task != 'classification' or not num_classes):
      raise UserError(f"{where}={spec!r} mixes targets: it needs task='classification', not "
                      f"{task!r}")
    params = {**op.defaults, **args}
    for key, value in params.items():
      if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"{where}: {name} {key}={value!r} must be a number >= 0")
    ops.append((name, params))
  if not ops:
    return None
  return lambda batch, key: apply(ops, batch, key, num_classes)


def apply(ops: list, batch: dict, key: jax.Array, num_classes: int | None) -> dict:
  """The augmented batch: each op in turn, op i with key fold_in(key, i); a per-example op gives
  example n the key fold_in(that, n)."""
  batch = dict(batch)
  x = batch['input']
  n = x.shape[0]
  for i, (name, params) in enumerate(ops):
    op_key = jax.random.fold_in(key, i)
    if OPS[name].per_example:
      keys = jax.vmap(lambda j: jax.random.fold_in(op_key, j))(jnp.arange(n))
      fn = _PER_EXAMPLE[name]
      x = jax.vmap(lambda e, k: fn(e, k, **params))(x, keys)
    else:
      x, batch = _mix(name, params, x, batch, op_key, num_classes)
  batch['input'] = x
  return batch


def _crop(x, key, pad):
  h, w = x.shape[:2]
  padded = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)))
  dy, dx = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, x.shape[2]))


def _flip(x, key, p):
  return jnp.where(jax.random.uniform(key) < p, x[:, ::-1], x)


def _affine(x, key, rotate, scale, translate):
  """Rotation about the centre, zoom and shift; bilinear sampling, zeros outside."""
  h, w, c = x.shape
  k1, k2, k3 = jax.random.split(key, 3)
  angle = jnp.deg2rad(jax.random.uniform(k1, minval=-rotate, maxval=rotate))
  zoom = jax.random.uniform(k2, minval=1 - scale, maxval=1 + scale)
  shift = jax.random.uniform(k3, (2,), minval=-translate, maxval=translate) * jnp.array([h, w])
  yy, xx = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing='ij')
  cy, cx = (h - 1) / 2, (w - 1) / 2
  # Inverse map: where in the input each output pixel comes from.
  y0, x0 = yy - cy - shift[0], xx - cx - shift[1]
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  src_y = (cos * y0 + sin * x0) / zoom + cy
  src_x = (-sin * y0 + cos * x0) / zoom + cx
  sample = lambda channel: jax.scipy.ndimage.map_coordinates(
      channel, [src_y, src_x], order=1, mode='constant', cval=0.0)
  return jnp.stack([sample(x[..., i]) for i in range(c)], axis=-1).astype(x.dtype)


def _cutout(x, key, size):
  h, w = x.shape[:2]
  cy, cx = jax.random.randint(key, (2,), 0, jnp.array([h, w]))
  yy, xx = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  inside = ((yy >= cy - size // 2) & (yy < cy - size // 2 + size) &
            (xx >= cx - size // 2) & (xx < cx - size // 2 + size))
  return jnp.where(inside[..., None], 0.0, x).astype(x.dtype)


def _resample(x, positions):
  """Linear interpolation of a signal [L] or [L, C] at real `positions`, edge values outside."""
  positions = jnp.clip(positions, 0, x.shape[0] - 1)
  lo = jnp.floor(positions).astype(jnp.int32)
  hi = jnp.minimum(lo + 1, x.shape[0] - 1)
  frac = (positions - lo).reshape((-1,) + (1,) * (x.ndim - 1))
  return (x[lo] * (1 - frac) + x[hi] * frac).astype(x.dtype)


def _shift(x, key, max):  # pylint: disable=redefined-builtin
  amount = jax.random.randint(key, (), -max, max + 1)
  return _resample(x, jnp.arange(x.shape[0]) - amount)


def _scale(x, key, max):  # pylint: disable=redefined-builtin
  factor = jax.random.uniform(key, minval=1 - max, maxval=1 + max)
  centre = (x.shape[0] - 1) / 2
  return _resample(x, (jnp.arange(x.shape[0]) - centre) / factor + centre)


def _noise(x, key, std):
  return (x + std * jax.random.normal(key, x.shape)).astype(x.dtype)


_PER_EXAMPLE = {'crop': _crop, 'flip': _flip, 'affine': _affine, 'cutout': _cutout,
                'shift': _shift, 'scale': _scale, 'noise': _noise}


def _mix(name: str, params: dict, x, batch: dict, key, num_classes: int):
  """mixup / cutmix over the batch: example i with example perm[i], weight λ from Beta(α, α)."""
  k_perm, k_lam, k_box = jax.random.split(key, 3)
  perm = jax.random.permutation(k_perm, x.shape[0])
  alpha = max(float(params['alpha']), 1e-6)
  lam = jax.random.beta(k_lam, alpha, alpha)
  soft = batch.get('soft_label')
  if soft is None:
    soft = jax.nn.one_hot(batch['label'], num_classes, dtype=jnp.float32)
  if name == 'mixup':
    mixed = lam * x + (1 - lam) * x[perm]
  else:  # cutmix: a box of area (1 - λ) from the partner; λ is then the exact kept area.
    h, w = x.shape[1:3]
    ky, kx = jax.random.split(k_box)
    bh = jnp.round(h * jnp.sqrt(1 - lam)).astype(jnp.int32)
    bw = jnp.round(w * jnp.sqrt(1 - lam)).astype(jnp.int32)
    y0 = jax.random.randint(ky, (), 0, h - bh + 1)
    x0 = jax.random.randint(kx, (), 0, w - bw + 1)
    yy, xx = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    box = (yy >= y0) & (yy < y0 + bh) & (xx >= x0) & (xx < x0 + bw)
    mixed = jnp.where(box[None, ..., None], x[perm], x)
    lam = 1 - (bh * bw) / (h * w)
  batch = dict(batch, soft_label=lam * soft + (1 - lam) * soft[perm])
  return mixed.astype(x.dtype), batch

