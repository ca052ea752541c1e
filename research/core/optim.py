"""Optax optimizer and learning-rate schedule from `config.optimizer`.

Fields: `name` (sgd | adam | adamw), `learning_rate`, `momentum` and `nesterov` (sgd), `b1`, `b2`
(adam, adamw), `weight_decay` (L2 added to the gradient for sgd and adam, decoupled for adamw),
`schedule` (constant | cosine | warmup_cosine), `warmup_steps`, `grad_clip_norm` (0 = off),
`state_dtype` (float32 | bfloat16: the dtype of the momentum / Adam's first moment, which halves
its memory; Adam's second moment stays float32, as optax keeps it, since its tiny values would
lose too much in bfloat16's 8-bit mantissa).
"""
import jax.numpy as jnp
import ml_collections
import optax

from research.config import schema
from research.errors import UserError, unknown

OPTIMIZERS = ('sgd', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine')
STATE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}  # None: optax's default (params').


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The optimizer group completed with the schema's defaults; UserError for a bad value. The one
  check of the optimizer's fields: `create` runs it, and a sweep's up-front check calls it."""
  cfg = ml_collections.ConfigDict(schema.complete(schema.OPTIMIZER, cfg.to_dict()))
  if cfg.name not in OPTIMIZERS:
    raise unknown('config.optimizer.name', cfg.name, OPTIMIZERS)
  if not cfg.learning_rate > 0:
    raise UserError(f"config.optimizer.learning_rate must be > 0, got {cfg.learning_rate}")
  if cfg.schedule not in SCHEDULES:
    raise unknown('config.optimizer.schedule', cfg.schedule, SCHEDULES)
  if cfg.state_dtype not in STATE_DTYPES:
    raise unknown('config.optimizer.state_dtype', cfg.state_dtype, STATE_DTYPES)
  for key in ('weight_decay', 'grad_clip_norm', 'warmup_steps', 'momentum'):
    if cfg[key] < 0:
      raise UserError(f"config.optimizer.{key} must be >= 0, got {cfg[key]}")
  return cfg


def schedule(cfg: ml_collections.ConfigDict, total_steps: int,
             peak: float | None = None) -> optax.Schedule:
  """The learning rate as a function of the step, peaking at `peak` (default: learning_rate).
  `cfg` is a validated (complete) optimizer group."""
  kind = cfg.schedule
  peak = cfg.learning_rate if peak is None else peak
  if kind == 'constant':
    return optax.constant_schedule(peak)
  if kind == 'cosine':
    return optax.cosine_decay_schedule(peak, decay_steps=total_steps)
  warmup = min(cfg.warmup_steps, total_steps - 1)
  # optax.warmup_cosine_decay_schedule(0, peak, warmup, total_steps) written out: it branches on
  # `peak == 0`, which a traced (vmapped) peak cannot do; these are the same two pieces.
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup),
       optax.cosine_decay_schedule(peak, decay_steps=total_steps - warmup)], [warmup])


def create(cfg: ml_collections.ConfigDict, total_steps: int, skip_nonfinite: bool = False, *,
           learning_rate=None, weight_decay=None) -> optax.GradientTransformation:
  """Builds the optimizer: [clip] → [L2] → update rule scaled by the schedule.

  With `skip_nonfinite`, `optax.apply_if_finite` leaves parameters and optimizer state unchanged
  on a step whose gradients hold a NaN or Inf (and counts it in `total_notfinite`).
  `learning_rate` / `weight_decay`, when given, replace the config's values and may be traced
  arrays (research/run/vectorized.py builds one optimizer per vmapped member this way); the
  optimizer's structure, e.g. whether it has an L2 term, still follows `cfg`.
  """
  cfg = validate(cfg)
  lr = schedule(cfg, total_steps, learning_rate)
  decay = cfg.weight_decay
  decay_value = decay if weight_decay is None else weight_decay
  state_dtype = STATE_DTYPES[cfg.state_dtype]
  if cfg.name == 'sgd':
    momentum = cfg.momentum or None
    rule = optax.sgd(lr, momentum=momentum, nesterov=cfg.nesterov,
                     accumulator_dtype=state_dtype)
  elif cfg.name == 'adam':
    rule = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, mu_dtype=state_dtype)
  else:
    rule = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2,
                       weight_decay=decay_value, mu_dtype=state_dtype)
  chain = []
  if cfg.grad_clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if decay > 0 and cfg.name != 'adamw':
    chain.append(optax.add_decayed_weights(decay_value))
  optimizer = optax.chain(*chain, rule)
  if skip_nonfinite:
    # A run that only ever produces non-finite gradients should still fail, not idle.
    optimizer = optax.apply_if_finite(optimizer, max_consecutive_errors=1_000_000)
  return optimizer
