"""A config's docstring states what its command prints: configs/default.py's, pinned exactly.

Every config's docstring gives a command and an "Expected (measured ...)" result; they are
re-measured by hand when training changes. The default config is cheap enough (600 steps) to
check on every run of the slow tests: the command as its docstring writes it (with a temporary
workdir), on one device, must print and record exactly the documented accuracies.
"""
import ast
import json
import re
import shlex

import pytest

from conftest import ROOT, run_cli


def _docstring(config: str) -> str:
  # Read, not imported: the docstring is the documentation, whatever get_config does.
  return ast.get_docstring(ast.parse((ROOT / config).read_text()))


def test_the_default_docstring_states_its_command_and_three_accuracies():
  doc = _docstring('configs/default.py')
  assert re.search(r'^\s*research train --config configs/default\.py --workdir \S+$', doc, re.M)
  assert re.search(r'Expected \(measured, seed 0\): test accuracy 0\.\d{3}, validation '
                   r'0\.\d{3}, train 0\.\d{3}\.', doc), doc


@pytest.mark.slow
def test_default_config_prints_the_accuracies_its_docstring_states(tmp_path):
  doc = _docstring('configs/default.py')
  command = re.search(r'^\s*(research train --config configs/default\.py .*)$', doc, re.M)
  args = shlex.split(command.group(1))[1:]
  args[args.index('--workdir') + 1] = str(tmp_path / 'run')
  expected = re.search(r'Expected \(measured, seed 0\): test accuracy (0\.\d{3}), validation '
                       r'(0\.\d{3}), train (0\.\d{3})\.', doc)
  test, validation, train = expected.groups()

  result = run_cli(*args, devices=1)
  assert result.returncode == 0, result.stderr[-2000:]
  printed = json.loads(result.stdout.splitlines()[-1])  # Test accuracy to 4 decimals.
  final = json.loads((tmp_path / 'run' / 'summary.json').read_text())['final']
  assert printed['test_accuracy'] == round(final['test']['accuracy'], 4), (printed, final)
  assert f"{final['test']['accuracy']:.3f}" == test, final
  assert f"{final['validation']['accuracy']:.3f}" == validation, final
  assert f"{final['train']['accuracy']:.3f}" == train, final
