"""Hyper-parameter search with Optuna (`research sweep` of a `Search` experiment): real trials,
the pruner fed at every evaluation, the journal storage, the report, and bad input."""
import json
import textwrap

import pytest

from conftest import assert_usage_error, run_cli
from research.errors import UserError
from research.sweeps import search
from research.sweeps.spec import Search, categorical, integer, log_uniform


def _experiment(path, space: str, extra: str = '') -> str:
  path.write_text(textwrap.dedent(f"""\
      from research.sweeps.spec import Search, categorical, integer, log_uniform, uniform

      def get_sweep():
        return Search(name='tiny_search', base='configs/mnist1d_linear.py', trials=3,
                      space={space}, startup_trials=1, sampler='random',
                      baseline={{'optimizer.learning_rate': 0.01}},
                      overrides={{'total_steps': 3000, 'eval_every': 100, 'log_every': 100,
                                  'checkpoint_every': 3000,
                                  'dataset.placement': 'host'}}{extra})
      """))
  return str(path)


@pytest.mark.slow
def test_search_prunes_hopeless_trials_and_reports_test_only_for_the_chosen_one(tmp_path):
  # The baseline (lr 1e-2) finishes first; the others draw a learning rate too small to move
  # the linear model, fall below its median at their first evaluation and are pruned there.
  experiment = _experiment(tmp_path / 'search.py',
                           "{'optimizer.learning_rate': log_uniform(1e-9, 1e-8)}")
  root = tmp_path / 'search'
  result = run_cli('sweep', experiment, '--workdir', str(root), '--jobs', '1')
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  import optuna  # pylint: disable=g-import-not-at-top
  rec = json.loads((root / search.SEARCH_FILE).read_text())
  study = search.open_study(rec, root)
  trials = study.get_trials()
  assert [t.state.name for t in trials] == ['COMPLETE', 'PRUNED', 'PRUNED']
  baseline = trials[0]
  assert baseline.params == {'optimizer.learning_rate': 0.01} and baseline.user_attrs['baseline']
  summary = json.loads((root / 'trials' / 'trial=0000' / 'summary.json').read_text())
  assert baseline.value == summary['final']['validation']['accuracy']
  # The pruner saw every evaluation of the baseline, and the pruned trials stopped early.
  assert sorted(baseline.intermediate_values) == list(range(100, 3001, 100))
  for trial in trials[1:]:
    assert 1e-9 <= trial.params['optimizer.learning_rate'] <= 1e-8
    assert min(trial.intermediate_values) == 100
    assert trial.user_attrs['steps'] < 3000 == trial.user_attrs['total_steps']
    assert not (root / 'trials' / f'trial={trial.number:04d}' / 'summary.json').exists()
  assert study.best_trial.number == 0
  rerun = run_cli('sweep', experiment, '--workdir', str(root))  # The budget is spent.
  assert rerun.returncode == 0 and '3 of 3 trials done' in rerun.stdout
  assert len(optuna.load_study(study_name='tiny_search', storage=optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(str(root / 'study.journal')))).trials) == 3

  report = run_cli('report', str(root))
  assert report.returncode == 0, report.stderr[-2000:]
  text = (root / 'report.md').read_text()
  assert '1 complete, 2 pruned' in text and 'pruning saved' in text
  assert text.index('## Chosen on validation') < text.index('Only now, test')
  assert f"chosen trial {summary['final']['test']['accuracy']:.4g}" in text
  assert all((root / 'plots' / f'{n}.png').stat().st_size > 1000
             for n in ('optimization_history', 'parallel_coordinate', 'intermediate_values'))
  saved = json.loads((root / 'report.json').read_text())['compute']
  assert saved['saved'] == sum(3000 - t.user_attrs['steps'] for t in trials[1:]) > 2000


def test_bad_search_input_is_one_line_exit_2(tmp_path):
  root = tmp_path / 'search'
  for space, extra, needles in [
      ("{'optimizer.learning_rat': log_uniform(1e-4, 1e-1)}", '',
       ('optimizer.learning_rat', 'learning_rate')),
      ("{'optimizer.learning_rate': log_uniform(1e-4, 1e-1)}",
       ", storage='sqlite:////nonexistent-dir/x/study.db'", ('cannot open the Optuna storage',)),
  ]:
    experiment = _experiment(tmp_path / 'bad.py', space, extra)
    assert_usage_error(run_cli('sweep', experiment, '--workdir', str(root)), *needles)
    assert not (root / 'trials').exists() and not (root / search.SEARCH_FILE).exists()


def test_search_checks_its_settings_without_running():
  space = {'optimizer.learning_rate': log_uniform(1e-4, 1e-1), 'model.hidden_sizes':
           categorical((16,), (32, 32)), 'batch_size': integer(16, 64)}
  good = Search(name='s', base='configs/mnist1d_mlp.py', space=space, trials=2)
  search.check(good)
  assert search.trial_overrides(good, {'model.hidden_sizes': (16,)}) == [
      'model.hidden_sizes=(16,)']
  for change, needle in [({'sampler': 'grid'}, "sampler 'grid'"), ({'trials': 0}, 'trials'),
                         ({'pruner': 'hyperband'}, "pruner 'hyperband'"),
                         ({'baseline': {'seed': 1}}, "baseline key 'seed'"),
                         ({'space': {}}, 'empty search space'),
                         ({'space': {'optimizer.learning_rate': log_uniform(0.0, 1.0)}},
                          'low > 0'),
                         ({'space': {'model.hidden_sizes': categorical()}}, 'no choices')]:
    with pytest.raises(UserError, match=needle):
      search.check(Search(**{**good.__dict__, **change}))
