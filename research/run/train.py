"""`train_and_evaluate(config, workdir)`: one run of a config in a workdir.

Builds the experiment (research/run/parts.py), takes the workdir's lock, checks that the workdir
holds this experiment, and hands a `single_run.SingleRun` to THE loop (research/run/loop.py), which
restores the newest good checkpoint, trains on the schedule of the config, evaluates and writes
summary.json. Re-running on the same workdir resumes; because the data iterator's position and
the RNG key are in the checkpoint, the resumed run is the same run.
"""
import logging

import ml_collections

from research import config as config_lib
from research.devices import host_cpus
from research.run import agent, loop, parts, preemption, profiling, single_run
from research.rundir import checkpoint, provenance, workdir as workdir_lib

log = logging.getLogger('research')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       source: provenance.ConfigSource | None = None,
                       stop_request: preemption.StopRequest | None = None) -> dict:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the summary.

  `source` (the config file, argument and overrides) is recorded in run.json for reports.
  `stop_request`: the CLI's, set by a signal since the process started; without one, SIGTERM and
  SIGINT are handled for the duration of this call (research/run/preemption.py)."""
  with preemption.stop_on_signals(stop_request) as stop_request:
    host_cpus.apply(config)  # Before JAX starts its CPU threads (the first computation).
    if config_lib.is_agent(config):  # Reinforcement learning: the same loop, another program.
      log.info('setting up %s: agent on %s', workdir, config.env.name)
      return agent.train(config, workdir, source, stop_request)
    log.info('setting up %s: model %s on %s', workdir, config.model.name, config.dataset.name)
    exp = parts.build(config)  # First: a bad config must not leave an empty workdir behind.
    exp.devices.check_batch(exp.eval_batch_size, 'config.eval_batch_size')
    counts = exp.param_counts()
    log.info('parameters: %s', ', '.join(f'{k} {v:,}' for k, v in counts.items()))
    profiling.steps_to_trace(exp.config)  # Checks profile_steps against total_steps.
    stop_request.check('before training started; nothing was written')
    run_dir = workdir_lib.Workdir(workdir, exp.data.record())  # Records dataset.json.
    with run_dir.lock():
      run_dir.check_same_experiment(exp.config)  # Whenever config.json exists, checkpoints or not.
      with checkpoint.Checkpointer(run_dir.path, keep=exp.config.keep_checkpoints) as ckpt:
        member = loop.Member(run_dir, exp.config, source)
        return loop.run(single_run.SingleRun(exp), ckpt, [member], run_dir.path,
                        stop_request)[0]
