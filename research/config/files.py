"""Config files: load `path.py[:arg]`, parse its argument, apply `--config.a.b=V` overrides.

A config file is Python code that defines `get_config() -> ConfigDict`, or `get_config(arg)` when
it has variants (it is executed as such: only run config files you trust). On the command line it
is named `path.py` or `path.py:arg`; the part after the colon is passed to `get_config` as a
string, and config files that take several options read it with `parse_arg`. An argument given to
a file whose `get_config()` takes none is an error, not silently ignored.

We parse overrides ourselves instead of with `ml_collections.config_flags` because the latter
needs absl's process-global FLAGS and reports an unknown key with a traceback; here an unknown key
is one line naming the closest existing key. Type checking is ml_collections' own: assigning a
value of the wrong type to a `ConfigDict` field raises, and we turn that into a `UserError`.
Public through `research.config` (`config.load`, `config.apply_overrides`, ...).
"""
import ast
import importlib.util
import inspect
import pathlib
from typing import Any, Sequence

import ml_collections

from research.errors import UserError, closest

# Keys every config shares, so that one override works on every experiment (see DESIGN.md).
REQUIRED_KEYS = ('seed', 'dataset', 'model', 'loss', 'optimizer', 'batch_size', 'num_epochs',
                 'total_steps', 'eval_every', 'checkpoint_every', 'parallel')


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
