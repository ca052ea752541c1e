"""How a process uses the host's CPU cores: the threads XLA:CPU runs a run's kernels on
(`config.cpu_threads`; 0: one per core the process may use, XLA's own choice), and how many
XLA:CPU devices it has (`cpu_devices`: a vectorized group of agents runs a share of its seeds on
each, research/run/agent.py).

Why fewer can be faster: XLA:CPU runs a program's kernels on a pool of one thread per core. A
program made of many tiny kernels inside a loop (a DQN chunk: environment steps, replay and
128-example updates) has them handed between the threads, and the hand-offs cost more than the
second thread gives: on the 2-core machine one CartPole seed trained 37-39k environment steps/s
with one thread against 35-36k with two with the machine otherwise idle, and 30k against 23k at
load ~5, where other processes want the second core too. Large kernels (wide matmuls,
convolutions over big batches) do use every thread, so the default is one per core.

How: JAX sizes its CPU thread pools by the cores the process may run on (its CPU affinity) when
it creates its CPU client. So the main thread is pinned to `cpu_threads` cores
(`os.sched_setaffinity`), the client is created, and every thread is then given all of the
process's cores back: the pools keep their size, and no thread is tied to a core (two pinned runs
side by side would otherwise share one core while the other idles). Where JAX's backend has
started already (a notebook that ran JAX before calling `research.train_and_evaluate`), its pools
exist: the setting is then not applied, and a warning says so. The thread count does not change
results (tests/test_host_cpus.py).
"""
import logging
import os
import sys

import ml_collections

from research.errors import UserError

log = logging.getLogger('research')


def apply(config: ml_collections.ConfigDict) -> None:
  """Sizes XLA:CPU's thread pools for `config.cpu_threads` cores, where set and JAX's backend
  has not started (it starts the backend)."""
  threads = config.cpu_threads
  if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
    raise UserError(f'config.cpu_threads must be an int >= 0 (0: one per CPU core), got '
                    f'{threads!r}')
  if not threads:
    return
  allowed = sorted(os.sched_getaffinity(0))
  if threads > len(allowed):
    raise UserError(f'config.cpu_threads={threads}, but this process may use {len(allowed)} '
                    f'CPU core(s): use 1-{len(allowed)}, or 0 for one thread per core')
  if threads == len(allowed):
    return
  if _backend_started():
    log.warning('config.cpu_threads=%d is not applied: JAX started its CPU thread pools before '
                'this run (%d threads); set it before JAX starts (research train does)',
                threads, len(allowed))
    return
  os.sched_setaffinity(0, allowed[:threads])
  try:
    import jax  # pylint: disable=g-import-not-at-top
    jax.devices()  # Creates the backends, whose pools are sized by the affinity now.
  finally:
    for thread in os.listdir('/proc/self/task'):
      try:
        os.sched_setaffinity(int(thread), allowed)
      except OSError:  # A thread that ended meanwhile.
        pass
  log.info('cpu_threads=%d: XLA:CPU runs on %d thread(s)', threads, threads)


def cpu_devices(count: int) -> None:
  """Gives this process `count` XLA:CPU devices, at most one per core it may use, where JAX's
  backend has not started (XLA_FLAGS' --xla_force_host_platform_device_count decides otherwise);
  a backend already started keeps its devices, and a group then spreads over those it finds."""
  if not isinstance(count, int) or isinstance(count, bool) or count < 1:
    raise UserError(f'a count of CPU devices must be an int >= 1, got {count!r}')
  count = min(count, len(os.sched_getaffinity(0)))
  if count == 1 or _backend_started():
    return
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_num_cpu_devices', count)


def _backend_started() -> bool:
  """Whether JAX has created its backends (and with them its thread pools)."""
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()
