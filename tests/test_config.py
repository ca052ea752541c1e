"""Config files, `file.py:arg` strings, typed overrides and validation errors."""
import pathlib

import pytest

from research import config as config_lib
from research.errors import UserError
from research.run import agent_parts, parts
from research.rundir import layout

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs').glob('*.py'))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_validates_and_documents_itself(path):
  config = config_lib.load(str(path))
  (agent_parts.check if config_lib.is_agent(config) else parts.check)(config)  # An agent's own.
  for key in config_lib.REQUIRED_KEYS:
    assert key in config
  docstring = path.read_text().split('"""')[1]
  assert 'research train --config configs/' in docstring
  assert 'Expected' in docstring and 'Runtime' in docstring.replace('runtime', 'Runtime')


def test_config_arg_selects_variant():
  seed = config_lib.load('configs/seed_mlp.py')
  assert seed.dataset.name == 'mnist_idx' and seed.dataset.download  # The official files.
  digits = config_lib.load('configs/seed_mlp.py:dataset=digits')
  assert digits.dataset.name == 'digits' and not digits.dataset.download
  assert digits.optimizer.name == 'sgd' and digits.optimizer.learning_rate == 0.01
  assert config_lib.load('configs/seed_mlp.py:dataset=mnist').dataset.name == 'mnist'


def test_config_arg_errors_name_the_allowed_values():
  with pytest.raises(UserError, match="did you mean 'dataset'"):
    config_lib.load('configs/seed_mlp.py:datset=digits')
  with pytest.raises(UserError, match='mnist_idx'):
    config_lib.load('configs/seed_mlp.py:dataset=cifar')


def test_overrides_are_typed():
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, [
      'optimizer.learning_rate=0.5', 'model.hidden_sizes=(32, 16, 8)', 'num_epochs=2',
      'total_steps=7', 'model.activation=tanh', 'optimizer.nesterov=True', 'batch_size=16'])
  assert config.optimizer.learning_rate == 0.5
  assert config.model.hidden_sizes == (32, 16, 8)
  assert config.num_epochs == 2.0 and config.total_steps == 7
  assert config.model.activation == 'tanh' and config.optimizer.nesterov is True
  config_lib.apply_overrides(config, ['model.hidden_sizes=256'])
  assert config.model.hidden_sizes == (256,)


@pytest.mark.parametrize('override, message', [
    ('optimizer.learnin_rate=0.1', "did you mean 'config.optimizer.learning_rate'"),
    ('btch_size=3', "did you mean 'config.batch_size'"),
    ('batch_size=abc', 'expected int, got str'),
    ('seed=1.5', 'expected int, got float'),
    ('optimizer=3', 'group of settings'),
    ('batch_size', 'needs a value'),
    ('seed.x=1', 'is a value, not a group'),
])
def test_bad_overrides_are_user_errors(override, message):
  config = config_lib.load('configs/default.py')
  with pytest.raises(UserError, match=message):
    config_lib.apply_overrides(config, [override])


@pytest.mark.parametrize('override, message', [
    ('optimizer.learning_rate=-0.1', 'learning_rate must be > 0'),
    ('batch_size=0', 'batch_size must be an int >= 1'),
    ('model.name="mlpp"', "unknown model 'mlpp' \\(did you mean 'mlp'\\?\\)"),
    ('model.activation="relu6"', 'allowed: gelu, relu, sigmoid, tanh'),
    ('model.dropout_rate=1.5', 'dropout_rate must be in'),
    ('loss="mse2"', "did you mean 'mse'"),
    ('optimizer.name="adamm"', "did you mean 'adam'"),
    ('optimizer.schedule="linear"', 'allowed: constant, cosine, warmup_cosine'),
    ('parallel="pjit"', 'allowed: mesh, pmap'),
    ('dataset.validation_fraction=1.0', 'validation_fraction must be in'),
    ('model.hidden_sizes=(0,)', 'positive ints'),
])
def test_validation_names_the_bad_value(override, message):
  """What a sweep checks for every run before any runs: the shared settings (config.validate)
  and each registry's own fields (parts.check, which runs the checks the registries make while
  they build)."""
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, [override])
  with pytest.raises(UserError, match=message):
    parts.check(config)


def test_config_file_errors(tmp_path):
  with pytest.raises(UserError, match='does not exist'):
    config_lib.load(str(tmp_path / 'nope.py'))
  broken = tmp_path / 'broken.py'
  broken.write_text('def get_config(arg=None):\n  return (\n')
  with pytest.raises(UserError, match='syntax error at line'):
    config_lib.load(str(broken))
  empty = tmp_path / 'empty.py'
  empty.write_text('x = 1\n')
  with pytest.raises(UserError, match='defines no get_config'):
    config_lib.load(str(empty))
  wrong = tmp_path / 'wrong.py'
  wrong.write_text('def get_config(arg=None):\n  return {"seed": 0}\n')
  with pytest.raises(UserError, match='must return an ml_collections.ConfigDict'):
    config_lib.load(str(wrong))


def test_resolve_derives_steps_and_intervals(tmp_path, monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  config = config_lib.load('configs/default.py')
  resolved = config_lib.resolve(config, steps_per_epoch=20)
  assert resolved.total_steps == 600 and resolved.num_epochs == 30.0
  assert resolved.eval_every == 20 and resolved.checkpoint_every == 20
  assert resolved.dataset.data_dir == str(tmp_path)
  assert config.total_steps is None  # The input config is untouched.
  config.total_steps = 50
  resolved = config_lib.resolve(config, steps_per_epoch=20)
  assert resolved.total_steps == 50 and resolved.num_epochs == 2.5


def test_config_json_round_trip(tmp_path):
  config = config_lib.resolve(config_lib.load('configs/default.py'), steps_per_epoch=10)
  (tmp_path / 'config.json').write_text(config_lib.to_json(config))
  back = layout.read_config(tmp_path / 'config.json')
  assert back.to_dict() == config.to_dict()


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_no_config_file_ignores_its_argument(path):
  """A file whose get_config() takes no argument refuses one; the others read theirs (an
  unknown option is an error): `file.py:foo=1` never runs as if the `:foo=1` were not there."""
  with pytest.raises(UserError, match="takes no argument|unknown (config argument|variant)"):
    config_lib.load(f'{path}:foo=1')


def test_config_files_that_exit_or_ignore_their_argument(tmp_path):
  no_arg = tmp_path / 'no_arg.py'
  no_arg.write_text('from research import config\ndef get_config():\n  return config.base()\n')
  assert config_lib.load(str(no_arg)).seed == 0
  with pytest.raises(UserError, match=r"takes no argument.*got 'foo=1'"):
    config_lib.load(f'{no_arg}:foo=1')
  exits = tmp_path / 'exits.py'
  exits.write_text('import sys\ndef get_config(arg=None):\n  sys.exit(0)\n')
  with pytest.raises(UserError, match=r'called sys.exit\(0\)'):
    config_lib.load(str(exits))
  exits_on_import = tmp_path / 'exits_on_import.py'
  exits_on_import.write_text('import sys\nsys.exit()\n')
  with pytest.raises(UserError, match=r'called sys.exit\(None\) while loading'):
    config_lib.load(str(exits_on_import))


@pytest.mark.parametrize('override', [
    'seed=True', 'batch_size=True', 'total_steps=False', 'optimizer.learning_rate=True'])
def test_a_bool_is_not_a_number(override):
  config = config_lib.load('configs/default.py')
  with pytest.raises(UserError, match='expected (int|float), got bool'):
    config_lib.apply_overrides(config, [override])


@pytest.mark.parametrize('key, value', [
    ('log_every', 0), ('log_every', -3), ('keep_checkpoints', 0), ('keep_checkpoints', -1),
    ('eval_batch_size', 0), ('eval_batch_size', -1), ('seed', True), ('batch_size', True),
    ('total_steps', True), ('eval_every', 0), ('checkpoint_every', -1), ('num_devices', 0)])
def test_int_settings_are_checked_by_validate(key, value):
  config = config_lib.load('configs/default.py')
  config[key] = value  # As a config file would set it, past the override parser's type check.
  with pytest.raises(UserError, match=rf'config\.{key} must be .*got {value!r}'):
    config_lib.validate(config)
