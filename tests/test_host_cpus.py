"""`config.cpu_cores` (research/devices/host_cpus.py): a run pinned to fewer CPU cores trains the
same run, every thread JAX starts is on those cores, bad values are usage errors, and a process
whose JAX has started is left alone with a warning."""
import json
import logging
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from conftest import ROOT, assert_usage_error, run_cli
from research.devices import host_cpus

TWO_CORES = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                               reason='pinning to fewer cores needs a process allowed on 2 or more')
SHORT = ['--config.total_steps=6', '--config.eval_every=3', '--config.checkpoint_every=6',
         '--config.log_every=1']


@TWO_CORES
def test_a_pinned_run_trains_the_same_run(tmp_path):
  results = {}
  for cores in (1, 0):
    workdir = tmp_path / f'cores{cores}'
    result = run_cli('train', '--config', 'configs/default.py', *SHORT,
                     f'--config.cpu_cores={cores}', '--workdir', str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert ('cpu_cores=1: this process runs on CPU core(s)' in result.stderr) == (cores == 1)
    rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
    timing = ('steps_per_second', 'examples_per_second', 'seconds')
    results[cores] = ([{k: v for k, v in r.items() if k not in timing} for r in rows],
                      json.loads((workdir / 'summary.json').read_text())['final'])
  assert results[1] == results[0]


@TWO_CORES
def test_every_thread_jax_starts_runs_on_the_pinned_core():
  script = (
      'import os, ml_collections\n'
      'from research.devices import host_cpus\n'
      'host_cpus.apply(ml_collections.ConfigDict({"cpu_cores": 1}))\n'
      'import jax, jax.numpy as jnp\n'
      'print(sorted(os.sched_getaffinity(0)))\n'
      'x = jnp.ones((512, 512)); (x @ x).block_until_ready()\n'
      'tasks = os.listdir("/proc/self/task")\n'
      'print(len(tasks), sorted({open(f"/proc/self/task/{t}/status").read().split('
      '"Cpus_allowed_list:")[1].split()[0] for t in tasks}))\n')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  out = subprocess.run([sys.executable, '-c', script], env=env, cwd=ROOT, capture_output=True,
                       text=True, check=True).stdout.splitlines()
  first = min(os.sched_getaffinity(0))
  assert out[0] == f'[{first}]'
  threads, allowed = out[1].split(' ', 1)
  assert int(threads) > 1  # JAX's pool threads exist, and every one is on the pinned core:
  assert allowed == repr([str(first)])


def test_a_process_whose_jax_started_is_left_alone(caplog):
  import jax
  jax.devices()  # This test process's backend exists (its threads are on every core).
  before = os.sched_getaffinity(0)
  with caplog.at_level(logging.WARNING, logger='research'):
    host_cpus.apply(ml_collections.ConfigDict({'cpu_cores': 1}))
  if len(before) > 1:
    assert 'cpu_cores=1 is not applied' in caplog.text
  assert os.sched_getaffinity(0) == before
  np.testing.assert_array_equal(jax.numpy.arange(3), [0, 1, 2])


@pytest.mark.parametrize('value, needle', [
    ('-1', 'cpu_cores must be an int >= 0'),
    ('True', 'cpu_cores=True has the wrong type: expected int'),
    ('64', 'config.cpu_cores=64, but this process may use'),
])
def test_bad_values_are_usage_errors_that_write_nothing(tmp_path, value, needle):
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', 'configs/default.py', f'--config.cpu_cores={value}',
                   '--workdir', str(workdir))
  assert_usage_error(result, needle)
  assert not workdir.exists()
