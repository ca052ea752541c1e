"""Configs: the shared keys (`base`), validation of the shared settings, resolution.

The keys and their defaults are stated once, in research/config/schema.py; loading a config file and
applying overrides is research/config/files.py. `validate` checks the shared settings without
importing any registry: models, optimizers, losses and tasks check their own fields while they
build (a sweep checks every expanded config before it runs with `research.run.parts.check`).
`resolve` completes a config: every key of the schema, every field of its model family, and the
derived step counts, intervals and data_dir.
"""
import importlib.util
import json
import os
from typing import Any

import ml_collections

from research.config import schema
from research.errors import UserError, unknown

PARALLEL_MODES = schema.CHOICES['parallel']
DTYPES = schema.CHOICES['dtype']
VECTORIZE_MODES = schema.CHOICES['vectorize_mode']


def base() -> ml_collections.ConfigDict:
  """The keys every experiment shares, with their defaults (schema.TOP). Config files start from
  this. `total_steps` (when set) takes precedence over `num_epochs`; `eval_every` and
  `checkpoint_every` default to once per epoch; `num_devices` None means every local device."""

  def build(tree: dict) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    for key, value in tree.items():
      if isinstance(value, dict):
        config[key] = build(value)
      elif isinstance(value, schema.Unset):
        config[key] = ml_collections.config_dict.placeholder(value.type)
      else:
        config[key] = schema.plain(value)
    return config
  return build(schema.TOP)


def rl_base() -> ml_collections.ConfigDict:
  """`base()` plus an agent's own groups (`env`, `dqn`: schema.RL) with their defaults: where a
  reinforcement-learning config file starts (research/run/agent.py). `env.name` is left to it."""
  config = base()
  for group, fields in schema.RL.items():
    config[group] = ml_collections.ConfigDict(
        {k: (ml_collections.config_dict.placeholder(v.type) if isinstance(v, schema.Unset)
             else schema.plain(v)) for k, v in fields.items()})
  return config


def is_agent(config) -> bool:
  """Whether a config (ConfigDict or plain dict) is an agent's: it has an `env` group."""
  return 'env' in config and config['env'] is not None


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise UserError(message)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the shared settings' values whose types are fine but whose meaning is not (negative
  counts, unknown modes...). Imports no registry: a model's, optimizer's, loss's or task's own
  fields are checked by that registry while it builds (`research.run.parts.check` runs them all
  without building anything heavy, for a sweep's up-front check)."""
  config = ml_collections.ConfigDict(with_defaults(config.to_dict()))  # A file may skip keys.
  _check_int_settings(config)
  _check(config.num_epochs is None or config.num_epochs > 0,
         f"config.num_epochs must be > 0, got {config.num_epochs}")
  _check(config.total_steps is not None or config.num_epochs is not None,
         "set one of config.num_epochs or config.total_steps")
  if config.parallel not in PARALLEL_MODES:
    raise unknown('config.parallel mode', config.parallel, PARALLEL_MODES)
  if config.dtype not in DTYPES:
    raise unknown('config.dtype', config.dtype, DTYPES)
  if config.vectorize_mode not in VECTORIZE_MODES:
    raise unknown('config.vectorize_mode', config.vectorize_mode, VECTORIZE_MODES)
  stopping = config.early_stopping
  _check(stopping.patience >= 0, f"config.early_stopping.patience must be >= 0, got "
         f"{stopping.patience}")
  if stopping.mode not in schema.CHOICES['early_stopping.mode']:
    raise unknown('config.early_stopping.mode', stopping.mode,
                  schema.CHOICES['early_stopping.mode'])
  accum = config.grad_accum_steps
  _check(config.batch_size % accum == 0,
         f"config.batch_size={config.batch_size} must divide into config.grad_accum_steps="
         f"{accum} equal micro-batches")
  fraction = config.dataset.validation_fraction
  _check(0 < fraction < 1, f"config.dataset.validation_fraction must be in (0, 1), got {fraction}")
  shuffle = config.dataset.shuffle or 'every_epoch'
  if shuffle not in schema.CHOICES['dataset.shuffle']:
    raise unknown('dataset.shuffle mode', shuffle, schema.CHOICES['dataset.shuffle'])
  _validate_observability(config)


# Integer settings: (key, smallest value or None, what None means or None when not allowed).
# A bool is refused although Python counts it as an int: `seed=True` is a slip, not seed 1.
_INT_SETTINGS = (
    ('seed', None, None), ('batch_size', 1, None),
    ('eval_batch_size', 1, 'the training batch size'), ('total_steps', 1, 'from num_epochs'),
    ('eval_every', 1, 'once per epoch'), ('checkpoint_every', 1, 'at every evaluation'),
    ('log_every', 1, None), ('keep_checkpoints', 1, None),
    ('num_devices', 1, 'every local device'), ('grad_accum_steps', 1, None),
    ('steps_per_dispatch', 1, None))


def _check_int_settings(config: ml_collections.ConfigDict) -> None:
  for key, minimum, none_means in _INT_SETTINGS:
    if key not in config:  # A config.json written before the setting existed.
      continue
    value = config[key]
    if value is None and none_means:
      continue
    ok = (isinstance(value, int) and not isinstance(value, bool)
          and (minimum is None or value >= minimum))
    _check(ok, f"config.{key} must be an int{f' >= {minimum}' if minimum is not None else ''}"
           f"{f' (or None: {none_means})' if none_means else ''}, got {value!r}")


def _validate_observability(config: ml_collections.ConfigDict) -> None:
  """Progress display, W&B and profiling settings (profile_steps' upper bound is checked once
  total_steps is known, by profiling.steps_to_trace)."""
  if config.progress not in schema.CHOICES['progress']:
    raise unknown('config.progress mode', config.progress, schema.CHOICES['progress'])
  every = config.progress_every_seconds
  _check(isinstance(every, (int, float)) and every >= 0,
         f"config.progress_every_seconds must be a number >= 0, got {every!r}")
  check_wandb(config.wandb)


def check_wandb(settings: ml_collections.ConfigDict) -> None:
  """Raises UserError for W&B settings that cannot work (bad mode, package not installed)."""
  if not settings.enabled:
    return
  modes = schema.CHOICES['wandb.mode']
  if settings.mode not in modes:
    raise UserError(f"config.wandb.mode must be one of {', '.join(modes)}, "
                    f"got {settings.mode!r}")
  if importlib.util.find_spec('wandb') is None:
    raise UserError("config.wandb.enabled=True needs the wandb package: pip install wandb "
                    "(or pip install -e '.[wandb]'); or set config.wandb.enabled=False")


def resolve(config: ml_collections.ConfigDict, steps_per_epoch: int) -> ml_collections.ConfigDict:
  """A complete copy of `config`: every schema key it lacks and every field of its model family
  it does not set take their defaults (schema.py), and the derived fields are filled: data_dir,
  total_steps <-> num_epochs, eval and checkpoint intervals.

  `total_steps`, when set, takes precedence; otherwise it is `num_epochs * steps_per_epoch`.
  The caller's config is untouched.
  """
  resolved = _completed(config.to_dict())  # A deep copy; num_epochs becomes a float below.
  chosen = {key: resolved[key] for key in _DISPATCH_MULTIPLES}  # Set by the user, or None.
  dataset = resolved['dataset']
  if not dataset['data_dir']:
    dataset['data_dir'] = os.environ.get(
        'TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))
  if resolved['total_steps'] is None:
    resolved['total_steps'] = max(1, int(round(resolved['num_epochs'] * steps_per_epoch)))
  if resolved['eval_every'] is None:
    resolved['eval_every'] = min(steps_per_epoch, resolved['total_steps'])
  if resolved['checkpoint_every'] is None:
    resolved['checkpoint_every'] = resolved['eval_every']
  _fit_to_dispatch(resolved, chosen)
  resolved['num_epochs'] = resolved['total_steps'] / steps_per_epoch
  return ml_collections.ConfigDict(resolved)


def resolve_like(config: ml_collections.ConfigDict, stored: dict) -> dict:
  """`config` resolved as the run that wrote `stored` (its config.json) resolved its own: with that
  run's data_dir where `config` leaves it to the environment, and with its steps per epoch. Then
  any difference from `stored` is a real one, not a derived value (total_steps <-> num_epochs,
  intervals, data_dir). Returns the plain dict config.json would hold."""
  requested = ml_collections.ConfigDict(_completed(config.copy_and_resolve_references().to_dict()))
  if requested.dataset.data_dir is None:  # Taken from TFDS_DATA_DIR at run time.
    requested.dataset.data_dir = stored['dataset']['data_dir']
  steps_per_epoch = max(1, round(stored['total_steps'] / stored['num_epochs']))
  return json.loads(to_json(resolve(requested, steps_per_epoch)))


_DISPATCH_MULTIPLES = ('total_steps', 'eval_every', 'checkpoint_every', 'log_every')


def _fit_to_dispatch(resolved: dict, chosen: dict) -> None:
  """With k steps per dispatch, the loop only stops every k steps: derived step counts are
  rounded down to a multiple of k, and the ones the config sets must be multiples already."""
  k = resolved['steps_per_dispatch']
  if k == 1:
    return
  for key in _DISPATCH_MULTIPLES:
    if chosen[key] is None:  # Derived here, not chosen by the user.
      resolved[key] = max(k, resolved[key] // k * k)
    elif resolved[key] % k:
      raise UserError(f"config.{key}={resolved[key]} must be a multiple of "
                      f"config.steps_per_dispatch={k} (the loop stops only every {k} steps); "
                      f"e.g. {max(k, round(resolved[key] / k) * k)}")


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def with_defaults(stored: dict) -> dict:
  """A stored config.json as this code reads it: settings it predates take the schema's defaults
  (a new setting's default keeps the older behaviour, so an old run means what it meant).

  The model group takes its own family's defaults (schema.MODELS): `base()`'s model fields are
  the MLP's, defaults of that model only (a linear model has no hidden_sizes to default)."""
  return json.loads(json.dumps(_completed(stored)))  # JSON's types: lists, not tuples.


def _completed(tree: dict) -> dict:
  """`tree` (a plain nested dict) with every schema key it lacks set to its default, and its
  model group completed with its family's fields."""
  top = schema.plain(schema.TOP)
  top.pop('model')

  def merge(defaults: dict, values: dict) -> dict:
    merged = dict(defaults)
    for key, value in values.items():
      both_dicts = isinstance(value, dict) and isinstance(defaults.get(key), dict)
      merged[key] = merge(defaults[key], value) if both_dicts else value
    return merged
  merged = merge(top, tree)
  if is_agent(tree):  # An agent's groups: only where the config names an environment.
    merged = merge(schema.plain(schema.RL), merged)
  if isinstance(merged.get('model'), dict):
    merged['model'] = schema.complete_model(merged['model'])
  return merged


def flat_diff(old: dict, new: dict, prefix: str = '') -> dict:
  """{'a.b': (old, new)} for every leaf that differs between two nested dicts."""
  diff = {}
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      diff.update(flat_diff(a, b, f'{prefix}{key}.'))
    elif a != b:
      diff[f'{prefix}{key}'] = (a, b)
  return diff


def lookup(tree: dict, dotted: str, default: Any = None) -> Any:
  """The value at a dotted key ('optimizer.learning_rate') of a plain nested dict (a config.json
  or summary.json), or `default` where the path does not exist."""
  for part in dotted.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return default
    tree = tree[part]
  return tree


def from_stored(stored: dict) -> ml_collections.ConfigDict:
  """A workdir's stored config (config.json, read) as a complete ConfigDict: settings the file
  predates read as their defaults (`with_defaults`), lists become tuples as in config files."""

  def tuples(value):
    if isinstance(value, dict):
      return {k: tuples(v) for k, v in value.items()}
    if isinstance(value, list):
      return tuple(tuples(v) for v in value)
    return value

  return ml_collections.ConfigDict(tuples(with_defaults(stored)))
