"""`research` commands keep compiled programs in JAX's persistent cache (research/run/
compile_cache.py): a rerun loads them instead of compiling, with the same results."""
import json

import pytest

from conftest import run_cli

TRAIN = ['train', '--config', 'configs/default.py', '--config.total_steps=6',
         '--config.eval_every=6']


def _env(tmp_path, **extra) -> dict:
  """Without the suite's own cache folder (conftest.py): an empty JAX_COMPILATION_CACHE_DIR is
  unset for JAX, so the command picks its default folder, under XDG_CACHE_HOME."""
  return {'JAX_COMPILATION_CACHE_DIR': '', 'XDG_CACHE_HOME': str(tmp_path / 'xdg'), **extra}


def _entries(cache) -> dict:
  return {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}


@pytest.mark.slow
def test_a_rerun_loads_the_cached_programs_and_trains_the_same_run(tmp_path):
  cache = tmp_path / 'xdg' / 'research' / 'jax-compilation-cache'
  first = run_cli(*TRAIN, '--workdir', str(tmp_path / 'a'), env=_env(tmp_path))
  assert first.returncode == 0, first.stderr[-3000:]
  entries = _entries(cache)
  assert any(name.startswith('jit_train_steps') for name in entries), entries
  second = run_cli(*TRAIN, '--workdir', str(tmp_path / 'b'), env=_env(tmp_path))
  assert second.returncode == 0, second.stderr[-3000:]
  assert _entries(cache) == entries  # Every program loaded: none compiled and written again.
  final = lambda w: json.loads((tmp_path / w / 'summary.json').read_text())['final']
  assert final('a') == final('b')

