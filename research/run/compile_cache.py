"""JAX's persistent compilation cache for every `research` command.

Most of a small run's wall time is compiling: the MNIST-1D CNN compiled for ~11 s of a 33 s run
(state initialization, the training program and one evaluation program per split size;
benchmarks/mnist1d_vs_torch.py), and a sweep compiles the same programs again in every run. With
the cache, a rerun, a resumed run or the next seed of a sweep loads each executable from disk
instead; the executable is the one the compiler would have produced, so results do not change.

Settings are JAX's own, read from its environment variables when set; otherwise the commands use
the defaults below (`enable()`, called by the CLI and a sweep's group child, never at import):
  JAX_COMPILATION_CACHE_DIR                   the cache folder (default: CACHE_DIR)
  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS  cache only compiles that took longer (0.1 s)
  JAX_ENABLE_COMPILATION_CACHE=false          turns the cache off.
The folder grows without bound, as JAX's own default; JAX_COMPILATION_CACHE_MAX_SIZE=BYTES evicts
the least recently used entries (it needs `pip install filelock`), or delete the folder.
"""
import os
import sys

CACHE_DIR = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.join('~', '.cache'),
                         'research', 'jax-compilation-cache')
MIN_COMPILE_SECONDS = 0.1  # Not the many tiny programs of eager operations.


def enable() -> str | None:
  """Turns the cache on for this process (unless JAX's settings say otherwise); returns the
  folder in use, or None when the cache is off.

  Before JAX is imported (the CLI, whose usage errors must not wait for JAX) this only sets
  JAX's environment variables, which JAX reads when imported and child processes inherit;
  where JAX is imported already, its config."""
  jax = sys.modules.get('jax')
  if jax is None:
    if os.environ.get('JAX_ENABLE_COMPILATION_CACHE', '').strip().lower() in ('0', 'false'):
      return None
    path = os.environ.get('JAX_COMPILATION_CACHE_DIR') or _default_folder()
    if path:
      os.environ['JAX_COMPILATION_CACHE_DIR'] = path
      os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', str(MIN_COMPILE_SECONDS))
    return path
  if not jax.config.jax_enable_compilation_cache:
    return None
  if not jax.config.jax_compilation_cache_dir:
    path = _default_folder()
    if path is None:
      return None
    jax.config.update('jax_compilation_cache_dir', path)
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_SECONDS)
  return jax.config.jax_compilation_cache_dir


def _default_folder() -> str | None:
  """CACHE_DIR, created; None where it cannot be (a read-only home: run without the cache)."""
  path = os.path.expanduser(CACHE_DIR)
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  return path
