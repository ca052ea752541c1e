"""`research sweep` of a `Search` experiment: a hyper-parameter search with Optuna.

The study lives where every worker reaches it: Optuna's journal file DIR/study.journal (file
locks; fine on a shared filesystem), or the experiment's RDB URL. `--jobs N` workers run side by
side, as local processes or as the tasks of one SLURM array (`--launcher slurm`); each worker
(research/sweeps/search_worker.py) asks the study for a trial, trains it as an ordinary
`research train` in DIR/trials/trial=NNNN, reports every validation row of its metrics.jsonl to
the pruner, and stops it (SIGTERM: it checkpoints) when the pruner says so. Workers stop once the
study holds `trials` complete or pruned trials; rerunning the command continues the study up to
its budget. DIR/search.json records the search for the workers and `research report`.
"""
import dataclasses
import json
import pathlib
import time
from typing import Any, Callable

from research import config as config_lib
from research.errors import UserError
from research.sweeps import grid, plan as plan_lib, slurm
from research.sweeps.spec import Param, Search

SEARCH_FILE = 'search.json'
JOURNAL_FILE = 'study.journal'
TRIALS_DIR = 'trials'
SAMPLERS = ('tpe', 'random')
PRUNERS = ('median', 'successive_halving', 'none')
DIRECTIONS = ('maximize', 'minimize')


def label(value: Any) -> Any:
  """A categorical value as Optuna stores it (its choices must be plain scalars)."""
  return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def check(search: Search) -> None:
  """The search's settings and space, checked against its base config (no JAX)."""
  for name, value, allowed in (('direction', search.direction, DIRECTIONS),
                               ('sampler', search.sampler, SAMPLERS),
                               ('pruner', search.pruner, PRUNERS)):
    if value not in allowed:
      raise UserError(f"search {search.name!r}: {name} {value!r} is not one of "
                      f"{', '.join(allowed)}")
  if not isinstance(search.trials, int) or search.trials < 1:
    raise UserError(f"search {search.name!r}: trials must be an int >= 1, got {search.trials!r}")
  if not search.space:
    raise UserError(f"search {search.name!r} has an empty search space; give space={{'a.b': "
                    "log_uniform(1e-4, 1e-1), ...}")
  for key, param in search.space.items():
    _check_param(search.name, key, param)
  extra = sorted(set(search.baseline) - set(search.space))
  if extra:
    raise UserError(f"search {search.name!r}: baseline key {extra[0]!r} is not in the space")
  for point in (_corner(search, 0), _corner(search, -1), dict(search.baseline)):
    config = config_lib.load(search.base)
    try:
      config_lib.apply_overrides(config, trial_overrides(search, point))
    except UserError as e:
      raise UserError(f"search {search.name!r}: {e}") from None
  grid.build_configs([grid.Run('check', 'check', search.base, tuple(
      trial_overrides(search, _corner(search, 0))), {}, 0)])


def _check_param(name: str, key: str, param: Param) -> None:
  if not isinstance(param, Param):
    raise UserError(f"search {name!r}: {key!r} must be log_uniform(...), uniform(...), "
                    f"integer(...) or categorical(...), got {type(param).__name__}")
  if param.kind == 'categorical':
    if not param.choices:
      raise UserError(f"search {name!r}: categorical {key!r} has no choices")
    return
  if not (param.low < param.high) or (param.log and param.low <= 0):
    raise UserError(f"search {name!r}: {key!r} needs low < high (and low > 0 when log), "
                    f"got {param.low}, {param.high}")


def _corner(search: Search, end: int) -> dict:
  return {k: (p.choices[end] if p.kind == 'categorical' else (p.low, p.high)[end])
          for k, p in search.space.items()}


def trial_overrides(search: Search, params: dict) -> list[str]:
  """'a.b=V' strings of the search's overrides and a trial's values."""
  return trial_overrides_from_record({'overrides': search.overrides}, params)


def trial_overrides_from_record(rec: dict, params: dict) -> list[str]:
  return [grid.format_override(k, v) for k, v in {**rec['overrides'], **params}.items()]


def record(search: Search, experiment: str) -> dict:
  space = {k: {**dataclasses.asdict(p), 'choices': [label(c) for c in p.choices]}
           for k, p in search.space.items()}
  values = {k: {label(c): c for c in p.choices} for k, p in search.space.items()
            if p.kind == 'categorical'}
  return {'name': search.name, 'experiment': experiment, 'base': search.base,
          'overrides': dict(search.overrides), 'space': space,
          'choice_values': {k: {str(l): v for l, v in m.items()} for k, m in values.items()},
          'trials': search.trials, 'metric': search.metric, 'direction': search.direction,
          'sampler': search.sampler, 'pruner': search.pruner, 'seed': search.seed,
          'startup_trials': search.startup_trials, 'storage': search.storage,
          'baseline': {k: label(v) for k, v in search.baseline.items()},
          'test_metric': search.test_metric}


def storage_url(rec: dict, root: pathlib.Path) -> str:
  return rec['storage'] or f'journal:{root / JOURNAL_FILE}'


def open_study(rec: dict, root: pathlib.Path, create: bool = False):
  """The study (created when `create`); a storage that cannot be opened is a UserError."""
  import optuna  # pylint: disable=g-import-not-at-top
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  url = storage_url(rec, root)
  try:
    if url.startswith('journal:'):
      from optuna.storages.journal import JournalFileBackend  # pylint: disable=g-import-not-at-top
      storage = optuna.storages.JournalStorage(JournalFileBackend(url[len('journal:'):]))
    else:
      storage = optuna.storages.RDBStorage(url)
    sampler = (optuna.samplers.TPESampler(seed=rec['seed'], n_startup_trials=rec['startup_trials'])
               if rec['sampler'] == 'tpe' else optuna.samplers.RandomSampler(seed=rec['seed']))
    pruner = {'median': lambda: optuna.pruners.MedianPruner(n_startup_trials=rec['startup_trials']),
              'successive_halving': optuna.pruners.SuccessiveHalvingPruner,
              'none': optuna.pruners.NopPruner}[rec['pruner']]()
    if create:
      return optuna.create_study(study_name=rec['name'], storage=storage, sampler=sampler,
                                 pruner=pruner, direction=rec['direction'], load_if_exists=True)
    return optuna.load_study(study_name=rec['name'], storage=storage, sampler=sampler,
                             pruner=pruner)
  except (OSError, ValueError, ImportError, KeyError) as e:
    raise UserError(f"cannot open the Optuna storage {url!r}: {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}") from None
  except Exception as e:  # SQLAlchemy's errors: a bad URL, an unreachable database.
    raise UserError(f"cannot open the Optuna storage {url!r}: {type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None


def counts(study) -> dict[str, int]:
  result = {}
  for trial in study.get_trials(deepcopy=False):
    result[trial.state.name.lower()] = result.get(trial.state.name.lower(), 0) + 1
  return result


def run_search(search: Search, experiment: str, workdir: str, jobs: int, launcher: str,
               slurm_flags: dict, dry_run: bool, wait: bool, say: Callable[[str], None]) -> int:
  from research.sweeps import runner  # pylint: disable=g-import-not-at-top  (runner imports us)
  check(search)
  settings = None
  if launcher == 'slurm':
    settings = slurm.settings(search.slurm, slurm_flags)
    slurm.check_cluster(settings)
  root = pathlib.Path(workdir)
  rec = record(search, experiment)
  if dry_run:
    say(f'{search.name}: {search.trials} trials of {search.base} over '
        f"{', '.join(search.space)}; study in {storage_url(rec, root)}; {jobs} worker(s)")
    return 0
  root.mkdir(parents=True, exist_ok=True)
  study = open_study(rec, root, create=True)
  (root / SEARCH_FILE).write_text(json.dumps(rec, indent=2) + '\n')
  if rec['baseline'] and not study.get_trials(deepcopy=False):
    study.enqueue_trial(rec['baseline'], user_attrs={'baseline': True})
  done = counts(study)
  finished = done.get('complete', 0) + done.get('pruned', 0)
  say(f"{search.name}: {finished} of {search.trials} trials done ({done or 'none yet'}) in {root}")
  workers = min(jobs, search.trials - finished)
  if workers <= 0:
    say(f'`research report {root}` shows the search')
    return 0
  command = [*plan_lib.child_python()[0], '-m', 'research.sweeps.search_worker',
             '--sweep-dir', str(root)]
  tasks = [plan_lib.Task([], command, root / 'workers' / f'worker-{i}.log', name=f'worker {i}')
           for i in range(workers)]
  start = time.time()
  if settings is not None:
    ids = slurm.submit(tasks, root, settings, search.name)
    say(f"submitted {workers} worker(s) as SLURM array {ids[0].split('_')[0]}")
    if not wait:
      return 0
    while any(j in slurm.queue() for j in ids):
      time.sleep(5)
    failed, signum = [], None
  else:
    failed, signum = runner.execute(tasks, root, workers, say)
  done = counts(open_study(rec, root))
  say(f'{search.name}: {done} after {time.time() - start:.0f} s; `research report {root}`')
  if signum:
    return 128 + signum
  return 1 if failed else 0
