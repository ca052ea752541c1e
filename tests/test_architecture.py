"""The package's picture: imports run one way, config -> core / data / models / devices / rundir ->
run -> sweeps / reports / api -> cli, and no module grows past ~300 lines.

A new kind of training is a program plugged into the one loop (run/), never a copy of it; a
module lower down that imports one higher up is how the flat package of before grew knots."""
import ast
import pathlib

from conftest import ROOT

PACKAGE = ROOT / 'research'
# What each part of research/ may import from the rest of it (besides itself).
ALLOWED = {
    'errors': set(),
    'config': {'errors'},
    'core': {'config', 'errors'},
    'models': {'config', 'core', 'errors'},
    'devices': {'config', 'core', 'errors'},
    'rundir': {'config', 'errors'},
    'data': {'config', 'core', 'errors', 'rundir'},
    'run': {'config', 'core', 'data', 'devices', 'errors', 'models', 'rundir'},
    'api': {'config', 'core', 'data', 'devices', 'errors', 'models', 'run', 'rundir'},
    'sweeps': {'config', 'devices', 'errors', 'run', 'rundir'},  # devices: host_cpus.
    'reports': {'config', 'errors', 'rundir', 'sweeps'},
    # Understanding a finished run (attributions, attention, activations, robustness).
    'explain': {'api', 'config', 'core', 'errors', 'reports', 'rundir'},
    # Using a trained speech recognizer: transcription, greedy vs beam search with an LM.
    'speech': {'api', 'config', 'core', 'data', 'errors', 'rundir'},
    'cli': {'api', 'config', 'core', 'data', 'devices', 'errors', 'explain', 'models', 'reports',
            'run', 'rundir', 'speech', 'sweeps'},
    '__init__': {'api', 'run'},  # Lazy entry points, named as strings.
    '__main__': {'cli'},
}
MAX_LINES = 320  # "~300": a module that needs more holds two concepts.


def _part(path: pathlib.Path) -> str:
  relative = path.relative_to(PACKAGE).parts
  return relative[0] if len(relative) > 1 else relative[0][:-len('.py')]


def _imported_parts(path: pathlib.Path) -> set[str]:
  """The parts of research/ that a module imports anywhere in it (deferred imports too)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = ([f'research.{a.name}' for a in node.names] if node.module == 'research'
               else [node.module])
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    else:
      continue
    found.update(n.split('.')[1] for n in names if n.startswith('research.'))
  return found


def test_every_module_belongs_to_a_known_part():
  parts = {_part(p) for p in PACKAGE.rglob('*.py')}
  assert parts <= set(ALLOWED), sorted(parts - set(ALLOWED))


def test_imports_run_one_way():
  wrong = []
  for path in sorted(PACKAGE.rglob('*.py')):
    part = _part(path)
    for imported in sorted(_imported_parts(path) - {part} - ALLOWED[part]):
      wrong.append(f'{path.relative_to(ROOT)} ({part}) imports research.{imported}')
  assert not wrong, '\n'.join(wrong)


def test_a_lower_part_importing_a_higher_one_is_caught(tmp_path):
  """The check itself: a core module that reached up into run/ would be reported."""
  module = tmp_path / 'steps.py'
  module.write_text('def f():\n  from research.run import loop\n  return loop\n')
  assert 'run' in _imported_parts(module) - ALLOWED['core']


def test_no_module_is_over_the_size_that_holds_one_concept():
  long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob('*.py')
          if (n := len(p.read_text().splitlines())) > MAX_LINES}
  assert not long, long
