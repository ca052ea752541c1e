"""`config.cpu_threads` (research/devices/host_cpus.py): a run on fewer XLA:CPU threads trains the
same run, JAX's pools shrink while no thread stays tied to a core, bad values are usage errors,
and a process whose JAX has started is left alone with a warning."""
import json
import logging
import os
import subprocess
import sys

import ml_collections
import pytest

from conftest import ROOT, assert_usage_error, run_cli
from research.devices import host_cpus

TWO_CORES = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                               reason='fewer threads than cores needs a process on 2 or more')
SHORT = ['--config.total_steps=6', '--config.eval_every=3', '--config.checkpoint_every=6',
         '--config.log_every=1']


@TWO_CORES
def test_a_run_on_one_thread_trains_the_same_run(tmp_path):
  results = {}
  for threads in (1, 0):
    workdir = tmp_path / f'threads{threads}'
    result = run_cli('train', '--config', 'configs/default.py', *SHORT,
                     f'--config.cpu_threads={threads}', '--workdir', str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert ('cpu_threads=1: XLA:CPU runs on 1 thread(s)' in result.stderr) == (threads == 1)
    rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
    timing = ('steps_per_second', 'examples_per_second', 'seconds')
    results[threads] = ([{k: v for k, v in r.items() if k not in timing} for r in rows],
                        json.loads((workdir / 'summary.json').read_text())['final'])
  assert results[1] == results[0]


SCRIPT = """
import os, sys, ml_collections
from research.devices import host_cpus
host_cpus.apply(ml_collections.ConfigDict({'cpu_threads': int(sys.argv[1])}))
import jax, jax.numpy as jnp
jax.devices()
count = len(os.listdir('/proc/self/task'))  # The client's threads (later ones start lazily).
x = jnp.ones((512, 512)); (x @ x).block_until_ready()
tasks = os.listdir('/proc/self/task')
masks = {open(f'/proc/self/task/{t}/status').read().split('Cpus_allowed_list:')[1].split()[0]
         for t in tasks}
print(count, sorted(masks))
"""


@TWO_CORES
def test_jax_makes_fewer_threads_and_none_stays_on_one_core():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  out = {}
  for threads in (1, 0):
    line = subprocess.run([sys.executable, '-c', SCRIPT, str(threads)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    count, masks = line.split(' ', 1)
    out[threads] = int(count), masks
  assert out[1][0] < out[0][0]  # Pools sized for one core: fewer threads.
  assert out[1][1] == out[0][1]  # And every thread may run on every core, as without it.


def test_a_process_whose_jax_started_is_left_alone(caplog):
  import jax
  jax.devices()  # This test process's backend exists (its pools are sized already).
  threads = len(os.listdir('/proc/self/task'))
  with caplog.at_level(logging.WARNING, logger='research'):
    host_cpus.apply(ml_collections.ConfigDict({'cpu_threads': 1}))
  if len(os.sched_getaffinity(0)) > 1:
    assert 'cpu_threads=1 is not applied' in caplog.text
  assert len(os.listdir('/proc/self/task')) == threads


@pytest.mark.parametrize('value, needle', [
    ('-1', 'cpu_threads must be an int >= 0'),
    ('True', 'cpu_threads=True has the wrong type: expected int'),
    ('64', 'config.cpu_threads=64, but this process may use'),
])
def test_bad_values_are_usage_errors_that_write_nothing(tmp_path, value, needle):
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', 'configs/default.py', f'--config.cpu_threads={value}',
                   '--workdir', str(workdir))
  assert_usage_error(result, needle)
  assert not workdir.exists()


DEVICES = """
import sys
from research.devices import host_cpus
host_cpus.cpu_devices(int(sys.argv[1]))
import jax
print(len(jax.devices('cpu')))
"""


def test_cpu_devices_gives_a_fresh_process_one_device_per_core_at_most():
  """A vectorized agent group's devices (`dqn.group_devices`, research/run/agent.py): the count
  asked for, capped by the cores the process may use; XLA_FLAGS asks for 8, and is overridden."""
  cores = len(os.sched_getaffinity(0))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8')
  counts = {ask: int(subprocess.run([sys.executable, '-c', DEVICES, str(ask)], env=env, cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout)
            for ask in (2, 64)}
  assert counts == {2: min(2, cores), 64: cores}
  with pytest.raises(host_cpus.UserError, match='CPU devices must be an int >= 1'):
    host_cpus.cpu_devices(0)
