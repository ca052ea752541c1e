"""Optax optimizer and learning-rate schedule from `config.optimizer`.

Fields: `name` (sgd | adam | adamw with the fields below, or any other optax optimizer by name:
lamb, lion, adafactor, lars, rmsprop, ... with its own keyword arguments in `args`, e.g.
`('b2=0.98',)`; `weight_decay` is passed to those that take it, else added to the gradient as L2),
`learning_rate`, `momentum` and `nesterov` (sgd), `b1`, `b2`
(adam, adamw), `weight_decay` (L2 added to the gradient for sgd and adam, decoupled for adamw),
`schedule` (constant | cosine | warmup_cosine), `warmup_steps`, `grad_clip_norm` (0 = off),
`state_dtype` (float32 | bfloat16: the dtype of the momentum / Adam's first moment, which halves
its memory; Adam's second moment stays float32, as optax keeps it, since its tiny values would
lose too much in bfloat16's 8-bit mantissa), `freeze` (regexes over '/'-joined parameter paths
whose updates are zero: `optax.multi_transform` with `set_to_zero`, so frozen parameters keep
their bits and get no optimizer state) and `group_lr` ('REGEX=FACTOR': those parameters' updates,
i.e. their learning rate, scaled by FACTOR).
"""
import functools
import inspect
import re

import jax
import jax.numpy as jnp
import ml_collections
import optax

from research.config import schema
from research.core import opspec
from research.errors import UserError, unknown

OPTIMIZERS = ('sgd', 'adam', 'adamw')  # The ones the shared fields (momentum, b1, b2) configure.
# Optax functions with a `learning_rate` first argument that are not optimizers of a plain step.
_NOT_OPTIMIZERS = ('lbfgs', 'scale_by_learning_rate', 'scale_by_rprop')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine')
STATE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}  # None: optax's default (params').


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The optimizer group completed with the schema's defaults; UserError for a bad value. The one
  check of the optimizer's fields: `create` runs it, and a sweep's up-front check calls it."""
  cfg = ml_collections.ConfigDict(schema.complete(schema.OPTIMIZER, cfg.to_dict()))
  if cfg.name not in optax_optimizers():
    raise unknown('config.optimizer.name (an optax optimizer)', cfg.name, optax_optimizers())
  _arguments(cfg)
  opspec.rules(cfg.group_lr, 'config.optimizer.group_lr')
  for pattern in tuple(cfg.freeze) + tuple(p for p, _ in opspec.rules(cfg.group_lr, '')):
    try:
      re.compile(pattern)
    except re.error as e:
      raise UserError(f"config.optimizer: {pattern!r} is not a regular expression ({e})") from None
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


@functools.cache
def optax_optimizers() -> tuple[str, ...]:
  """Every optax optimizer `config.optimizer.name` may name: optax's functions whose first
  argument is `learning_rate` (sgd, adam, adamw, lamb, lion, adafactor, lars, ...)."""
  names = []
  for name in dir(optax):
    fn = getattr(optax, name)
    if name.startswith('_') or name in _NOT_OPTIMIZERS or not inspect.isfunction(fn):
      continue
    params = list(inspect.signature(fn).parameters)
    if params and params[0] == 'learning_rate':
      names.append(name)
  return tuple(names)


def _arguments(cfg) -> dict:
  """`optimizer.args` as keyword arguments of optax's `name`; UserError for one it does not take."""
  args = opspec.pairs(cfg.args, 'config.optimizer.args')
  accepted = [p for p in inspect.signature(getattr(optax, cfg.name)).parameters
              if p != 'learning_rate']
  for key in args:
    if key not in accepted:
      raise unknown(f'argument of optax.{cfg.name} in config.optimizer.args', key, accepted)
  return args


def path_labels(params, cfg) -> tuple[dict, list[str]]:
  """({path: 'frozen' | 'group_i' | 'train'}, patterns that match no parameter) for a validated
  optimizer group over a parameter tree; paths are '/'-joined keys ('Dense_0/kernel')."""
  rules = opspec.rules(cfg.group_lr, 'config.optimizer.group_lr')
  paths = [path for path, _ in flat_paths(params)]
  labels = {}
  for path in paths:
    if any(re.search(p, path) for p in cfg.freeze):
      labels[path] = 'frozen'
    else:
      labels[path] = next((f'group_{i}' for i, (p, _) in enumerate(rules) if re.search(p, path)),
                          'train')
  unused = [p for p in tuple(cfg.freeze) + tuple(p for p, _ in rules)
            if not any(re.search(p, path) for path in paths)]
  return labels, unused


def flat_paths(tree) -> list[tuple[str, object]]:
  """[('a/b/kernel', leaf)] of a nested dict of parameters."""
  return [('/'.join(str(getattr(k, 'key', k)) for k in path), leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


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
  rule, decay_in_rule = _rule(cfg, lr, decay_value, state_dtype)
  chain = []
  if cfg.grad_clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if decay > 0 and not decay_in_rule:
    chain.append(optax.add_decayed_weights(decay_value))
  optimizer = optax.chain(*chain, rule)
  if cfg.freeze or cfg.group_lr:
    optimizer = _by_group(cfg, optimizer)
  if skip_nonfinite:
    # A run that only ever produces non-finite gradients should still fail, not idle.
    optimizer = optax.apply_if_finite(optimizer, max_consecutive_errors=1_000_000)
  return optimizer


def _rule(cfg, lr, decay_value, state_dtype) -> tuple[optax.GradientTransformation, bool]:
  """The update rule scaled by the schedule, and whether it applies the weight decay itself."""
  args = _arguments(cfg)
  if cfg.name == 'sgd':
    return optax.sgd(lr, **{'momentum': cfg.momentum or None, 'nesterov': cfg.nesterov,
                            'accumulator_dtype': state_dtype, **args}), False
  if cfg.name == 'adam':
    return optax.adam(lr, **{'b1': cfg.b1, 'b2': cfg.b2, 'mu_dtype': state_dtype, **args}), False
  if cfg.name == 'adamw':
    return optax.adamw(lr, **{'b1': cfg.b1, 'b2': cfg.b2, 'weight_decay': decay_value,
                              'mu_dtype': state_dtype, **args}), True
  fn = getattr(optax, cfg.name)
  takes_decay = 'weight_decay' in inspect.signature(fn).parameters
  if takes_decay:  # The config's decay (default 0), not optax's own default (lion: 1e-3).
    args = {'weight_decay': decay_value, **args}
  return fn(lr, **args), takes_decay


def _by_group(cfg, optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
  """Frozen parameters get zero updates (and no optimizer state); each `group_lr` group the
  optimizer's updates times its factor."""
  rules = opspec.rules(cfg.group_lr, 'config.optimizer.group_lr')
  transforms = {'frozen': optax.set_to_zero(), 'train': optimizer}
  for i, (_, factor) in enumerate(rules):
    transforms[f'group_{i}'] = optax.chain(optimizer, optax.scale(factor))

  def labels(params):
    by_path = path_labels(params, cfg)[0]
    paths = iter(by_path[path] for path, _ in flat_paths(params))
    return jax.tree.map(lambda _: next(paths), params)
  return optax.multi_transform(transforms, labels)
