"""Experiment configs: load a config file, apply `--config.a.b=V` overrides, validate, resolve.

A config file is Python code that defines `get_config() -> ConfigDict`, or `get_config(arg)` when
it has variants (it is executed as such: only run config files you trust). On the command line it
is named `path.py` or `path.py:arg`; the part after the colon is passed to `get_config` as a
string, and config files that take several options read it with `parse_arg`. An argument given to
a file whose `get_config()` takes none is an error, not silently ignored.

We parse overrides ourselves instead of with `ml_collections.config_flags` because the latter
needs absl's process-global FLAGS and reports an unknown key with a traceback; here an unknown key
is one line naming the closest existing key. Type checking is ml_collections' own: assigning a
value of the wrong type to a `ConfigDict` field raises, and we turn that into a `UserError`.
"""
import ast
import importlib.util
import inspect
import json
import os
import pathlib
from typing import Any, Sequence

import ml_collections

from research.errors import UserError, closest, unknown

# Keys every config shares, so that one override works on every experiment (see DESIGN.md).
REQUIRED_KEYS = ('seed', 'dataset', 'model', 'loss', 'optimizer', 'batch_size', 'num_epochs',
                 'total_steps', 'eval_every', 'checkpoint_every', 'parallel')
PARALLEL_MODES = ('mesh', 'pmap')
DTYPES = ('float32', 'bfloat16')
VECTORIZE_MODES = ('vmap', 'unroll')


def base() -> ml_collections.ConfigDict:
  """The keys every experiment shares, with their defaults. Config files start from this.

  `total_steps` (when set) takes precedence over `num_epochs`; `eval_every` and
  `checkpoint_every` default to once per epoch; `num_devices` None means every local device.
  """
  placeholder = ml_collections.config_dict.placeholder
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.dataset = ml_collections.ConfigDict(dict(
      name='digits', data_dir=placeholder(str), manual_dir='', validation_fraction=0.1,
      download=False, shuffle='every_epoch'))
  config.model = ml_collections.ConfigDict(dict(
      name='mlp', hidden_sizes=(128, 64), activation='relu', dropout_rate=0.0))
  config.loss = 'cross_entropy'
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, momentum=0.0, nesterov=False, b1=0.9, b2=0.999,
      weight_decay=0.0, schedule='constant', warmup_steps=0, grad_clip_norm=0.0,
      state_dtype='float32'))
  config.batch_size = 64
  config.eval_batch_size = placeholder(int)  # None: the training batch size.
  config.num_epochs = placeholder(float)
  config.total_steps = placeholder(int)
  config.eval_every = placeholder(int)
  config.checkpoint_every = placeholder(int)
  config.keep_checkpoints = 3
  config.log_every = 50
  config.parallel = 'mesh'
  config.num_devices = placeholder(int)
  # Under parallel='mesh': the device mesh's axis sizes (-1: the rest of the devices), the
  # built-in sharding rule set ('data' | 'fsdp' | 'tensor' | 'fsdp_tensor'), and rules that come
  # before it: (regex over '/'-joined parameter paths, partition spec) pairs. See sharding.py.
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
  config.sharding = 'data'
  config.sharding_rules = ()
  # Memory and speed: micro-batches per step (gradients summed, then one update), and training
  # steps per compiled call (lax.scan over a stack of batches; intervals must be multiples).
  config.grad_accum_steps = 1
  config.steps_per_dispatch = 1
  config.task = 'classification'  # Or 'language_model', 'masked_lm' (token datasets).
  config.dtype = 'float32'  # 'bfloat16': mixed precision, float32 parameters and optimizer.
  config.label_smoothing = 0.0
  # A NaN or Inf loss stops the run (keeping the last good checkpoint); True skips such steps.
  config.skip_nonfinite = False
  # How a vectorized group (research/vectorized.py) runs its K members in one program: 'vmap'
  # (batched; fastest for matmul models) or 'unroll' (K copies of a run's own step: bit-identical
  # to separate runs, faster than vmap for convolutions on CPU, compiles K times longer).
  config.vectorize_mode = 'vmap'
  # Stop when the validation `metric` has not improved by `min_delta` for `patience`
  # evaluations in a row (patience 0: never). `mode` 'auto' minimizes losses, maximizes the rest.
  config.early_stopping = ml_collections.ConfigDict(dict(
      metric='accuracy', patience=0, mode='auto', min_delta=0.0))
  # Seeing a run (progress.py, metric_writers.py, profiling.py): progress 'auto' is a bar on a
  # terminal and a plain line every `progress_every_seconds` (and at each evaluation) otherwise;
  # TensorBoard event files go to workdir/tensorboard/; W&B only when enabled (pip install
  # wandb); `profile_steps=(a, b)` traces steps a..b into workdir/profile/.
  config.progress = 'auto'  # 'auto' | 'bar' | 'lines' | 'none'
  config.progress_every_seconds = 30.0
  config.tensorboard = True
  config.wandb = ml_collections.ConfigDict(dict(
      enabled=False, project='research', entity=placeholder(str), mode='online'))
  config.profile_steps = placeholder(tuple)
  return config


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses a config-file argument 'k=v,k2=v2' against typed defaults.

  Used by config files: `get_config('dataset=digits')` → `parse_arg(arg, dataset='mnist')`.
  Unknown keys and values of the wrong type are `UserError`s.
  """
  parsed = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, raw = item.partition('=')
    key = key.strip()
    if not sep:
      raise UserError(f"config argument {item!r} is not of the form key=value")
    if key not in parsed:
      raise UserError(f"unknown config argument {key!r}{closest(key, parsed.keys())}; "
                      f"allowed: {', '.join(sorted(parsed.keys()))}")
    _assign(parsed, key, _parse_value(raw.strip()), f'config argument {key}')
  return parsed


def mnist1d_variant(arg: str | None, config_name: str) -> str:
  """The MNIST-1D dataset name for a config argument: none, or 'shuffled' (the paper's variant
  with a fixed random permutation of the positions)."""
  variants = {None: 'mnist1d', 'shuffled': 'mnist1d/shuffled'}
  if arg not in variants:
    raise UserError(f"{config_name}: unknown variant {arg!r}; allowed: no argument, or :shuffled")
  return variants[arg]


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads 'path/to/config.py[:arg]' by calling its `get_config(arg)`, or `get_config()` for a
  file without variants (which then refuses an arg instead of ignoring it)."""
  path_str, _, arg = spec.partition(':')
  path = pathlib.Path(path_str)
  if path.suffix != '.py':
    raise UserError(f"--config must name a Python file (configs/NAME.py[:arg]), got {spec!r}")
  if not path.is_file():
    siblings = [str(p) for p in path.parent.glob('*.py')] if path.parent.is_dir() else []
    hint = closest(str(path), siblings) or (
        f"; available: {', '.join(sorted(siblings))}" if siblings else '')
    raise UserError(f"config file {str(path)!r} does not exist{hint}")
  module_spec = importlib.util.spec_from_file_location(f'_research_config_{path.stem}', path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except SyntaxError as e:
    raise UserError(f"config file {str(path)!r} has a syntax error at line {e.lineno}: {e.msg}")
  except UserError:
    raise
  except SystemExit as e:  # sys.exit() in a config file is not a successful run.
    raise UserError(f"config file {str(path)!r} called sys.exit({e.code!r}) while loading; a "
                    "config file must define get_config, not exit") from None
  except Exception as e:  # A config file is code; any error importing it is bad input.
    raise UserError(f"config file {str(path)!r} failed to load: {type(e).__name__}: {e}")
  get_config = getattr(module, 'get_config', None)
  if not callable(get_config):
    raise UserError(f"config file {str(path)!r} defines no get_config() function")
  takes_arg = _takes_argument(get_config)
  if arg and not takes_arg:
    raise UserError(f"config file {str(path)!r} takes no argument (its get_config() has no "
                    f"parameter), got {arg!r}; name it without ':{arg}'")
  try:
    config = get_config(arg or None) if takes_arg else get_config()
  except UserError:
    raise
  except SystemExit as e:
    raise UserError(f"get_config({arg or ''!r}) in {str(path)!r} called sys.exit({e.code!r}); "
                    "it must return a ConfigDict") from None
  except Exception as e:
    raise UserError(f"get_config({arg!r}) in {str(path)!r} failed: {type(e).__name__}: {e}")
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"get_config in {str(path)!r} must return an ml_collections.ConfigDict, "
                    f"got {type(config).__name__}")
  missing = [k for k in REQUIRED_KEYS if k not in config]
  if missing:
    raise UserError(f"config {str(path)!r} lacks the shared top-level keys: {', '.join(missing)}")
  return config


def _takes_argument(get_config) -> bool:
  """Whether a config file's `get_config` accepts the `file.py:arg` string (one parameter)."""
  try:
    return bool(inspect.signature(get_config).parameters)
  except (TypeError, ValueError):  # No signature to read (a builtin): pass the argument.
    return True


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
  """Applies 'a.b=V' strings in place. V is a Python literal, else taken as a string."""
  for override in overrides:
    dotted, sep, raw = override.partition('=')
    if not sep:
      raise UserError(f"override --config.{override} needs a value: --config.{dotted}=VALUE")
    *parents, leaf = dotted.split('.')
    node, walked = config, []
    for part in parents:
      _require_key(node, part, walked)
      node = node[part]
      walked.append(part)
      if not isinstance(node, ml_collections.ConfigDict):
        raise UserError(f"config.{'.'.join(walked)} is a value, not a group; cannot set {dotted}")
    _require_key(node, leaf, walked)
    _assign(node, leaf, _parse_value(raw), f'config.{dotted}')


def _require_key(node: ml_collections.ConfigDict, key: str, walked: list[str]) -> None:
  if key not in node:
    prefix = 'config.' + ''.join(f'{w}.' for w in walked)
    options = [prefix + k for k in node.keys()]
    raise UserError(f"unknown config key {prefix + key!r}{closest(prefix + key, options)}; "
                    f"keys here: {', '.join(sorted(node.keys()))}")


def _parse_value(raw: str) -> Any:
  try:
    return ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return raw


def _assign(node: ml_collections.ConfigDict, key: str, value: Any, name: str) -> None:
  current = node[key]
  if isinstance(current, ml_collections.ConfigDict):
    raise UserError(f"{name} is a group of settings; set its fields instead "
                    f"({', '.join(sorted(current.keys()))})")
  if isinstance(current, (tuple, list)) and isinstance(value, (int, float, str)):
    value = (value,)  # `--config.model.hidden_sizes=128` means a one-layer tuple.
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  want = node.get_type(key)
  if isinstance(value, bool) and want in (int, float):  # Python counts True as 1.
    raise UserError(f"{name}={value!r} has the wrong type: expected {want.__name__}, got bool")
  try:
    node[key] = value
  except TypeError:
    want = node.get_type(key)
    raise UserError(f"{name}={value!r} has the wrong type: expected "
                    f"{getattr(want, '__name__', want)}, got {type(value).__name__}") from None


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise UserError(message)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks values whose types are fine but whose meaning is not (negative rates, names...)."""
  # Registries, imported here so that config files load without JAX.
  from research import losses, models, optim, tasks  # pylint: disable=g-import-not-at-top
  _check_int_settings(config)
  _check(config.num_epochs is None or config.num_epochs > 0,
         f"config.num_epochs must be > 0, got {config.num_epochs}")
  _check(config.total_steps is not None or config.num_epochs is not None,
         "set one of config.num_epochs or config.total_steps")
  if config.parallel not in PARALLEL_MODES:
    raise unknown('config.parallel mode', config.parallel, PARALLEL_MODES)
  losses.get(config.loss, config.get('label_smoothing', 0.0))
  tasks.create(config)
  if config.get('dtype', 'float32') not in DTYPES:
    raise unknown('config.dtype', config.dtype, DTYPES)
  if config.get('vectorize_mode', 'vmap') not in VECTORIZE_MODES:
    raise unknown('config.vectorize_mode', config.vectorize_mode, VECTORIZE_MODES)
  stopping = config.get('early_stopping')
  if stopping is not None:
    _check(stopping.patience >= 0, f"config.early_stopping.patience must be >= 0, got "
           f"{stopping.patience}")
    if stopping.mode not in ('auto', 'min', 'max'):
      raise unknown('config.early_stopping.mode', stopping.mode, ('auto', 'min', 'max'))
  models.validate(config.model)
  optim.validate(config.optimizer)
  accum = config.get('grad_accum_steps', 1)
  _check(config.batch_size % accum == 0,
         f"config.batch_size={config.batch_size} must divide into config.grad_accum_steps="
         f"{accum} equal micro-batches")
  fraction = config.dataset.get('validation_fraction', 0.1)
  _check(0 < fraction < 1, f"config.dataset.validation_fraction must be in (0, 1), got {fraction}")
  from research.data import pipeline  # pylint: disable=g-import-not-at-top
  pipeline.shuffle_mode(config.dataset)
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
  from research import metric_writers, progress  # pylint: disable=g-import-not-at-top
  if config.get('progress', 'auto') not in progress.MODES:
    raise unknown('config.progress mode', config.progress, progress.MODES)
  every = config.get('progress_every_seconds', 30.0)
  _check(isinstance(every, (int, float)) and every >= 0,
         f"config.progress_every_seconds must be a number >= 0, got {every!r}")
  metric_writers.check_wandb(config.get('wandb'))


def resolve(config: ml_collections.ConfigDict, steps_per_epoch: int) -> ml_collections.ConfigDict:
  """Fills derived fields: data_dir, total_steps ↔ num_epochs, eval and checkpoint intervals.

  `total_steps`, when set, takes precedence; otherwise it is `num_epochs * steps_per_epoch`.
  Returns a copy; the caller's config is untouched.
  """
  resolved = config.to_dict()  # A deep copy; fields are retyped below (num_epochs becomes a float).
  dataset = resolved['dataset']
  if not dataset.get('data_dir'):
    dataset['data_dir'] = os.environ.get(
        'TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))
  if resolved['total_steps'] is None:
    resolved['total_steps'] = max(1, int(round(resolved['num_epochs'] * steps_per_epoch)))
  if resolved['eval_every'] is None:
    resolved['eval_every'] = min(steps_per_epoch, resolved['total_steps'])
  if resolved['checkpoint_every'] is None:
    resolved['checkpoint_every'] = resolved['eval_every']
  _fit_to_dispatch(resolved, config)
  resolved['num_epochs'] = resolved['total_steps'] / steps_per_epoch
  return ml_collections.ConfigDict(resolved)


def resolve_like(config: ml_collections.ConfigDict, stored: dict) -> dict:
  """`config` resolved as the run that wrote `stored` (its config.json) resolved its own: with that
  run's data_dir where `config` leaves it to the environment, and with its steps per epoch. Then
  any difference from `stored` is a real one, not a derived value (total_steps <-> num_epochs,
  intervals, data_dir). Returns the plain dict config.json would hold."""
  requested = config.copy_and_resolve_references()
  if requested.dataset.get('data_dir') is None:  # Taken from TFDS_DATA_DIR at run time.
    requested.dataset.data_dir = stored['dataset']['data_dir']
  steps_per_epoch = max(1, round(stored['total_steps'] / stored['num_epochs']))
  return json.loads(to_json(resolve(requested, steps_per_epoch)))


def _fit_to_dispatch(resolved: dict, config: ml_collections.ConfigDict) -> None:
  """With k steps per dispatch, the loop only stops every k steps: derived step counts are
  rounded down to a multiple of k, and the ones the config sets must be multiples already."""
  k = resolved.get('steps_per_dispatch', 1)
  if k == 1:
    return
  for key in ('total_steps', 'eval_every', 'checkpoint_every', 'log_every'):
    if key not in resolved:
      continue
    if config.get(key) is None:  # Derived here, not chosen by the user.
      resolved[key] = max(k, resolved[key] // k * k)
    elif resolved[key] % k:
      raise UserError(f"config.{key}={resolved[key]} must be a multiple of "
                      f"config.steps_per_dispatch={k} (the loop stops only every {k} steps); "
                      f"e.g. {max(k, round(resolved[key] / k) * k)}")


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def with_defaults(stored: dict) -> dict:
  """A stored config.json as this code reads it: settings it predates take `base()`'s defaults
  (a new setting's default keeps the older behaviour, so an old run means what it meant).

  `base()`'s model fields are the MLP's: they are defaults of that model only, so another model's
  group is kept as stored (a linear model has no hidden_sizes to default)."""
  defaults = json.loads(to_json(base()))
  if lookup(stored, 'model.name') != defaults['model']['name']:
    defaults.pop('model')

  def merge(defaults: dict, values: dict) -> dict:
    merged = dict(defaults)
    for key, value in values.items():
      both_dicts = isinstance(value, dict) and isinstance(defaults.get(key), dict)
      merged[key] = merge(defaults[key], value) if both_dicts else value
    return merged
  return merge(defaults, stored)


def lookup(tree: dict, dotted: str, default: Any = None) -> Any:
  """The value at a dotted key ('optimizer.learning_rate') of a plain nested dict (a config.json
  or summary.json), or `default` where the path does not exist."""
  for part in dotted.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return default
    tree = tree[part]
  return tree


def from_json_file(path: os.PathLike) -> ml_collections.ConfigDict:
  """Reads a workdir's config.json back as a ConfigDict (lists become tuples, as in configs)."""

  def tuples(value):
    if isinstance(value, dict):
      return {k: tuples(v) for k, v in value.items()}
    if isinstance(value, list):
      return tuple(tuples(v) for v in value)
    return value

  with open(path) as f:
    return ml_collections.ConfigDict(tuples(json.load(f)))
