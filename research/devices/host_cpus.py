"""How a run uses the host's CPUs: `config.cpu_cores`, the cores its process runs on (0: all it
may use).

Why fewer cores can be faster: XLA:CPU runs a program's kernels on a pool of one thread per core.
A program made of many tiny kernels inside a loop (a DQN chunk: environment steps, replay and
128-example updates) has them handed between the threads, and the hand-offs cost more than the
second core gives: on the 2-core machine one CartPole seed trained 37-39k environment steps/s on
one core against 35-36k on two with the machine otherwise idle, and 26k against 15k at load ~2.7,
where other processes want the second core too. Large kernels (wide matmuls, convolutions over
big batches) do use every core, so the default is all of them.

It must be decided before JAX creates its CPU client: the main thread is pinned to the first
`cpu_cores` of the cores it may use (`os.sched_setaffinity`, the mechanism of `taskset`; the
client's thread pool is sized by, and inherits, that affinity). The command line applies it
before JAX starts. Where JAX's backend has started already (a notebook that ran JAX before
calling `research.train_and_evaluate`), its threads exist and keep their cores: the setting is
then not applied, and a warning says so. The thread count does not change results
(tests/test_host_cpus.py).
"""
import logging
import os
import sys

import ml_collections

from research.errors import UserError

log = logging.getLogger('research')


def apply(config: ml_collections.ConfigDict) -> None:
  """Pins this process to `config.cpu_cores` cores, where set and JAX's backend has not
  started."""
  cores = config.cpu_cores
  if not isinstance(cores, int) or isinstance(cores, bool) or cores < 0:
    raise UserError(f'config.cpu_cores must be an int >= 0 (0: every core this process may '
                    f'use), got {cores!r}')
  if cores:
    _pin(cores, _backend_started())


def _pin(cores: int, started: bool) -> None:
  allowed = sorted(os.sched_getaffinity(0))
  if cores > len(allowed):
    raise UserError(f'config.cpu_cores={cores}, but this process may use {len(allowed)} '
                    f'CPU core(s) ({", ".join(map(str, allowed))}): use 1-{len(allowed)}, '
                    'or 0 for all of them')
  if cores == len(allowed):
    return
  if started:
    log.warning('config.cpu_cores=%d is not applied: JAX started its CPU threads before this run '
                '(on %d cores); set it before JAX starts (research train does)',
                cores, len(allowed))
    return
  os.sched_setaffinity(0, allowed[:cores])
  log.info('cpu_cores=%d: this process runs on CPU core(s) %s', cores,
           ', '.join(map(str, allowed[:cores])))


def _backend_started() -> bool:
  """Whether JAX has created its backends (and with them its thread pools)."""
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()
