"""One worker of a hyper-parameter search (research/sweeps/search.py):

  python -P -m research.sweeps.search_worker --sweep-dir DIR

Not meant to be typed by hand. Until the study in DIR holds its budget of complete or pruned
trials, it asks the study for a trial, trains it with `research train` in DIR/trials/trial=NNNN
(log: train.log there), and reads the run's metrics.jsonl while it trains: every validation row
is reported to Optuna at its step, and when the pruner says the trial is hopeless the run gets
SIGTERM (it checkpoints and exits) and the trial is told PRUNED, with the steps it trained and
the steps it would have trained as user attributes. A finished run's final validation metric is
the trial's value; its test metric is kept as an attribute that only the report's chosen trial
shows. A SIGTERM to the worker stops the current run (which checkpoints) and fails its trial,
so a later worker samples a fresh one; the exit code is 143.
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Sequence

from research.errors import UserError
from research.rundir import layout
from research.sweeps import plan as plan_lib, search as search_lib

POLL_SECONDS = 0.5


def _suggest(trial, key: str, param: dict, values: dict):
  if param['kind'] == 'categorical':
    chosen = trial.suggest_categorical(key, param['choices'])
    return values.get(key, {}).get(str(chosen), chosen)
  suggest = trial.suggest_int if param['kind'] == 'int' else trial.suggest_float
  return suggest(key, param['low'], param['high'], log=param['log'])


class _Rows:
  """New complete lines of a growing metrics.jsonl."""

  def __init__(self, path: pathlib.Path):
    self.path, self.offset = path, 0

  def read(self) -> list[dict]:
    try:
      with open(self.path, 'rb') as f:
        f.seek(self.offset)
        data = f.read()
    except FileNotFoundError:
      return []
    end = data.rfind(b'\n') + 1
    self.offset += end
    rows = []
    for line in data[:end].splitlines():
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
    return rows


def run_trial(study, trial, rec: dict, root: pathlib.Path, stop: list) -> str:
  """Trains one trial; tells the study how it ended. Returns the state's name."""
  import optuna  # pylint: disable=g-import-not-at-top
  params = {k: _suggest(trial, k, p, rec['choice_values']) for k, p in rec['space'].items()}
  run_dir = root / search_lib.TRIALS_DIR / f'trial={trial.number:04d}'
  run_dir.mkdir(parents=True, exist_ok=True)
  trial.set_user_attr('workdir', str(run_dir))
  overrides = search_lib.trial_overrides_from_record(rec, params)
  python, env = plan_lib.child_python()
  command = [*python, '-m', 'research', 'train', '--config', rec['base'], '--workdir',
             str(run_dir), *(f'--config.{o}' for o in overrides)]
  rows, reported, pruned, last_step = _Rows(run_dir / layout.METRICS), set(), False, 0
  with open(run_dir / 'train.log', 'a') as log:
    log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} trial {trial.number}: "
              f"{' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    forwarded = False
    while True:
      for row in rows.read():
        last_step = max(last_step, row.get('step', 0))
        if (row.get('split') == 'validation' and rec['metric'] in row and
            row['step'] not in reported and not pruned):
          reported.add(row['step'])
          trial.report(float(row[rec['metric']]), row['step'])
          if trial.should_prune():
            pruned = True
            process.send_signal(signal.SIGTERM)  # It checkpoints and exits 143.
      if stop and not forwarded and process.poll() is None:
        if 'SLURM_JOB_ID' not in os.environ:  # Under SLURM the run got the signal itself.
          process.send_signal(signal.SIGTERM)
        forwarded = True
      if process.poll() is not None:
        break
      time.sleep(POLL_SECONDS)
    code = process.wait()
  for row in rows.read():
    last_step = max(last_step, row.get('step', 0))
  summary = layout.summary(run_dir)
  config = layout.config(run_dir)
  total = config.get('total_steps') if config else None
  trial.set_user_attr('total_steps', total)
  trial.set_user_attr('steps', summary['steps'] if summary else last_step)
  if pruned and not summary:
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return 'pruned'
  if code == 0 and summary:
    value = summary['final']['validation'][rec['metric']]
    test = summary
    for part in rec['test_metric'].split('.'):
      test = test.get(part) if isinstance(test, dict) else None
    trial.set_user_attr('test', test)
    study.tell(trial, value)
    return 'complete'
  trial.set_user_attr('failure', f'exit {code}{" (stopped)" if stop else ""}; log '
                                 f'{run_dir / "train.log"}')
  study.tell(trial, state=optuna.trial.TrialState.FAIL)
  return 'fail'


def work(root: pathlib.Path, say=print) -> int:
  import optuna  # pylint: disable=g-import-not-at-top
  rec = json.loads((root / search_lib.SEARCH_FILE).read_text())
  study = search_lib.open_study(rec, root)
  stop: list = []
  for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda s, f: stop.append(s))
  busy = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
          optuna.trial.TrialState.RUNNING)
  while not stop:
    if len(study.get_trials(deepcopy=False, states=busy)) >= rec['trials']:
      return 0
    trial = study.ask()
    state = run_trial(study, trial, rec, root, stop)
    say(json.dumps({'trial': trial.number, 'state': state, 'params': trial.params}))
  return 128 + stop[0]


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='research.sweeps.search_worker', description=__doc__)
  parser.add_argument('--sweep-dir', required=True)
  args = parser.parse_args(argv)
  try:
    return work(pathlib.Path(args.sweep_dir))
  except UserError as e:
    print(f"research.sweeps.search_worker: error: {e}", file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
