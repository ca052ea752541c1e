"""The config schema (research/config/schema.py): the ground of the package, and complete."""
import ast
import pathlib
import re

import pytest

from research import config as config_lib
from research.config import schema
from research.core import tokens

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / 'configs').glob('*.py'))


def test_schema_imports_nothing_from_research():
  tree = ast.parse((ROOT / 'research' / 'config' / 'schema.py').read_text())
  imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
  imported += [n.module or '' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
  assert not [m for m in imported if m == 'research' or m.startswith('research.')], imported


def _keys(tree: dict, prefix: str = '') -> set[str]:
  out = set()
  for key, value in tree.items():
    out |= _keys(value, f'{prefix}{key}.') if isinstance(value, dict) else {prefix + key}
  return out


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_every_key_of_every_shipped_config_is_in_the_schema(path):
  config = config_lib.load(str(path)).to_dict()
  model = config.pop('model')
  known = _keys(schema.plain(schema.TOP)) | {f'dataset.{k}' for k in schema.DATASET_FIELDS}
  known |= _keys(schema.plain(schema.RL)) if 'env' in config else set()  # An agent's groups.
  assert _keys(config) <= known, _keys(config) - known
  assert model['name'] in schema.MODELS
  assert set(model) - {'name'} <= set(schema.MODELS[model['name']])


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_a_resolved_config_has_every_field_of_its_model_family(path):
  resolved = config_lib.resolve(config_lib.load(str(path)), steps_per_epoch=10)
  assert set(schema.MODELS[resolved.model.name]) | {'name'} == set(resolved.model.keys())
  shared = {k for k in _keys(schema.plain(schema.TOP)) if not k.startswith('model.')}
  assert shared <= _keys(resolved.to_dict())


def test_with_defaults_fills_each_model_familys_own_defaults():
  old = {'model': {'name': 'gru', 'hidden_size': 8}, 'seed': 1}
  filled = config_lib.with_defaults(old)
  assert filled['model'] == {'name': 'gru', **schema.MODELS['gru'], 'hidden_size': 8}
  assert 'hidden_sizes' not in filled['model']  # The MLP's defaults are the MLP's only.
  assert filled['log_every'] == 50 and filled['seed'] == 1
  assert config_lib.with_defaults({'model': {'name': 'nope'}})['model'] == {'name': 'nope'}


def test_the_transformer_vocabulary_default_is_the_byte_vocabulary():
  assert schema.MODELS['gpt']['vocab_size'] == schema.MODELS['bert']['vocab_size'] == \
      tokens.VOCAB_SIZE


# Reads of stored JSON (rows, summaries, run.json, a dict of tables), not config values.
_DATA_READS = {'research/reports/run_plots.py', 'research/reports/run_report.py',
               'research/reports/sweep_tables.py', 'research/reports/sweep_plots.py',
               'research/rundir/provenance.py', 'research/run/flops.py'}
_NOT_OURS = re.compile(r'research/data/')  # Dataset metadata (dataset_info.json, records).


def test_no_config_value_is_read_with_a_restated_default():
  pattern = re.compile(r"""\.get\(\s*['"](\w+)['"]\s*,""")
  found = []
  for path in sorted((ROOT / 'research').rglob('*.py')):
    name = path.relative_to(ROOT).as_posix()
    if name in _DATA_READS or _NOT_OURS.match(name):
      continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
      for key in pattern.findall(line):
        every = _keys(schema.plain(schema.TOP)) | _keys(schema.plain(schema.RL))
        if key in every | {k.rsplit('.', 1)[-1] for k in every} | {
            f for fields in schema.MODELS.values() for f in fields}:
          found.append(f'{name}:{number}: {line.strip()}')
  assert not found, '\n'.join(found)
