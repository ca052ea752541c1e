"""`research list [KIND]`: what a config can name, without reading the source.

KIND is one of `KINDS`: the shipped config files (with the first line of each docstring; read
with `ast`, never executed), the registered models, the bundled datasets, losses, optimizers and
schedules, tasks, and every config key with its default (research/config/schema.py: the shared
keys, then each model family's fields). Each kind imports only the
registry it lists, so `research list configs` and `research list keys` do not load JAX.
"""
import ast
import os
import pathlib

KINDS = ('configs', 'models', 'datasets', 'losses', 'optimizers', 'tasks', 'keys')
# The repository's configs/ (an editable install); else ./configs where the command runs.
SHIPPED_CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'


def lines(kind: str) -> list[str]:
  """The lines `research list KIND` prints: one entry per line, name first."""
  return {'configs': _configs, 'models': _models, 'datasets': _datasets, 'losses': _losses,
          'optimizers': _optimizers, 'tasks': _tasks, 'keys': _keys}[kind]()


def _table(rows: list[tuple[str, str]]) -> list[str]:
  width = max((len(name) for name, _ in rows), default=0)
  return [f'{name:<{width}}  {text}'.rstrip() for name, text in rows]


def _first_line(docstring: str | None) -> str:
  text = (docstring or '').strip()
  return text.splitlines()[0] if text else ''


def _configs() -> list[str]:
  directory = SHIPPED_CONFIGS if SHIPPED_CONFIGS.is_dir() else pathlib.Path('configs')
  if not directory.is_dir():
    return ['(no configs/ directory here; the shipped configs come with the repository)']
  rows = []
  for path in sorted(directory.glob('*.py')):
    try:
      tree = ast.parse(path.read_text())
    except (SyntaxError, UnicodeDecodeError) as e:
      rows.append((_shown(path), f'(cannot be read: {type(e).__name__})'))
      continue
    takes_arg = any(isinstance(node, ast.FunctionDef) and node.name == 'get_config' and (
        node.args.args or node.args.posonlyargs or node.args.vararg) for node in tree.body)
    rows.append((_shown(path) + ('[:ARG]' if takes_arg else ''),
                 _first_line(ast.get_docstring(tree))))
  return _table(rows)


def _shown(path: pathlib.Path) -> str:
  """`path` relative to the working directory when it is below it, else absolute."""
  relative = os.path.relpath(path)
  return path.as_posix() if relative.startswith('..') else pathlib.Path(relative).as_posix()


def _models() -> list[str]:
  from research import models  # pylint: disable=g-import-not-at-top
  return _table([(name, _first_line(module.__doc__)) for name, module in models.FAMILIES.items()])


def _datasets() -> list[str]:
  from research.data import catalog  # pylint: disable=g-import-not-at-top
  return [*catalog.BUNDLED,
          '(bundled: prepared on first use, no network; any other TFDS dataset name works once '
          'prepared in dataset.data_dir)']


def _losses() -> list[str]:
  from research.core import losses  # pylint: disable=g-import-not-at-top
  rows = [(name, _first_line(fn.__doc__)) for name, fn in losses.LOSSES.items()]
  rows += [(f'{name} (regression)', _first_line(fn.__doc__))
           for name, fn in losses.REGRESSION_LOSSES.items()]
  return _table(rows)


def _optimizers() -> list[str]:
  from research.core import optim  # pylint: disable=g-import-not-at-top
  others = [n for n in optim.optax_optimizers() if n not in optim.OPTIMIZERS]
  return [*optim.OPTIMIZERS, f"(any optax optimizer, its arguments in optimizer.args: "
          f"{', '.join(others)})", f"(optimizer.schedule: {', '.join(optim.SCHEDULES)})"]


def _tasks() -> list[str]:
  from research.core import tasks  # pylint: disable=g-import-not-at-top
  return list(tasks.TASKS)


def _keys() -> list[str]:
  from research.config import schema  # pylint: disable=g-import-not-at-top
  return _table([(key, repr(default)) for key, default in schema.rows()]) + [
      "(model.*: the mlp's fields, base()'s model; model[NAME].*: the fields of model NAME, "
      "filled in when a config sets model.name=NAME; dataset.seq_len / audio_length: token and "
      "audio datasets only)"]
