"""A run report's figures and headline, from workdir files written here (no training): the task's
headline metrics, log-scaled loss axes, separate axes for the two gaps, damaged files."""
import json
import math

import pytest

from research.errors import UserError
from research.reports import run_plots, run_report
from research.rundir import layout

LM_CONFIG = {'task': 'language_model', 'loss': 'cross_entropy', 'model': {'name': 'gpt'},
             'dataset': {'name': 'addition/lm'}, 'total_steps': 40, 'batch_size': 128}
CLASSIFIER = {'task': 'classification', 'loss': 'cross_entropy', 'model': {'name': 'mlp'},
              'dataset': {'name': 'digits'}, 'total_steps': 40, 'batch_size': 64}


def _row(step, split, loss, accuracy, **more):
  return {'step': step, 'split': split, 'loss': loss, 'accuracy': accuracy, 'count': 100, **more}


def _lm_rows():
  """Field names as a `configs/gpt_addition.py` run writes them; perplexity 270 -> 2.2."""
  rows = []
  for step in (10, 20, 30, 40):
    loss = 5.6 - 0.12 * step
    rows.append(_row(step, 'train', loss, step / 50, answer_accuracy=step / 45,
                     perplexity=math.exp(loss)))
    if step % 20 == 0:
      rows.append(_row(step, 'validation', loss + 0.1, step / 55, answer_accuracy=step / 50,
                       perplexity=math.exp(loss + 0.1)))
  rows.append(_row(40, 'test', 1.0, 0.7, answer_accuracy=0.78, perplexity=math.exp(1.0),
                   exact_match=0.75))
  return rows


def _lm_summary():
  final = {split: {k: v for k, v in row.items() if k not in ('step', 'split')}
           for split, row in (('train', _lm_rows()[-3]), ('validation', _lm_rows()[-2]),
                              ('test', _lm_rows()[-1]))}
  final['validation']['exact_match'] = 0.74
  return {'steps': 40, 'final': final}


def _workdir(path, config, rows, summary=None):
  path.mkdir()
  (path / 'config.json').write_text(json.dumps(config))
  (path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  if summary is not None:
    (path / 'summary.json').write_text(json.dumps(summary))
  return path


def _legend(ax) -> list[str]:
  return ax.get_legend_handles_labels()[1]


def test_language_model_reports_show_exact_match_answer_accuracy_and_perplexity(tmp_path):
  rows, summary = _lm_rows(), _lm_summary()
  fig = run_plots.learning_curves(rows, LM_CONFIG, summary)
  perplexity, answers = fig.axes
  assert perplexity.get_title() == 'perplexity per token'
  assert answers.get_title() == 'answer accuracy (teacher-forced)'
  assert 'test exact match (final)' in _legend(answers)
  assert 'validation exact match (final)' in _legend(answers)
  assert not any('token accuracy' in label for ax in fig.axes for label in _legend(ax))
  report = run_report.write_run_report(_workdir(tmp_path / 'w', LM_CONFIG, rows, summary))
  text = report[-1].read_text()
  assert ('- Result: test exact match (generated answers) **0.75**, answer accuracy '
          '(teacher-forced) **0.78**, perplexity per token **2.718**; validation exact match '
          '(generated answers) **0.74**') in text
  assert ('| split | exact match (generated answers) | answer accuracy (teacher-forced) | '
          'perplexity per token | token accuracy | count | loss |') in text


def test_token_tasks_without_perplexity_or_answers_plot_exp_loss_and_token_accuracy(tmp_path):
  rows = [_row(s, split, 3.0 / s, 0.1 * s) for s in (1, 2, 4) for split in ('train', 'validation')]
  masked = {**LM_CONFIG, 'task': 'masked_lm'}
  assert run_plots.panels('masked_lm', rows) == ['perplexity', 'accuracy']
  assert run_plots.with_perplexity(rows, 'masked_lm')[0]['perplexity'] == pytest.approx(
      math.exp(3.0))
  assert 'perplexity' not in run_plots.with_perplexity(rows, 'classification')[0]
  titles = [ax.get_title() for ax in run_plots.learning_curves(rows, masked, None).axes]
  assert titles == ['perplexity per hidden token', 'masked-token accuracy']
  text = run_report.write_run_report(_workdir(
      tmp_path / 'w', masked, rows, {'steps': 4, 'final': {'test': {'loss': 0.5,
                                                                   'accuracy': 0.4}}}))[-1]
  assert '- Result: test masked-token accuracy **0.4**, perplexity per hidden token **1.649**' \
      in text.read_text()


def test_loss_axes_are_logarithmic_when_the_values_span_more_than_a_decade():
  assert run_plots.log_scale([2.3, 0.2]) and not run_plots.log_scale([2.3, 0.5])
  assert not run_plots.log_scale([2.3, 0.0]) and not run_plots.log_scale([])
  wide = [_row(s, 'train', 2.3 / s ** 2, 0.5) for s in (1, 2, 4)]
  narrow = [_row(s, 'train', 2.3 - 0.1 * s, 0.5) for s in (1, 2, 4)]
  for rows, scale in ((wide, 'log'), (narrow, 'linear')):
    loss, accuracy = run_plots.learning_curves(rows, CLASSIFIER, None).axes
    assert loss.get_yscale() == scale and accuracy.get_yscale() == 'linear'
    assert loss.get_ylabel() == ('loss (nats per example, log scale)' if scale == 'log' else
                                 'loss (nats per example)')
  assert run_plots.learning_curves(_lm_rows(), LM_CONFIG, None).axes[0].get_yscale() == 'log'


def test_the_gap_figure_gives_loss_and_accuracy_their_own_axes_and_units():
  rows = [_row(10, 'train', 1.0, 0.9), _row(10, 'validation', 1.2, 0.8),
          _row(20, 'train', 0.5, 0.95), _row(20, 'validation', 0.9, 0.85)]
  loss, accuracy = run_plots.gap_figure(rows, CLASSIFIER).axes
  assert (loss.get_title(), loss.get_ylabel()) == ('validation − train loss', 'nats per example')
  assert (accuracy.get_title(), accuracy.get_ylabel()) == ('train − validation accuracy',
                                                           'percentage points')
  assert list(loss.lines[0].get_ydata()) == pytest.approx([0.2, 0.4])
  assert list(accuracy.lines[0].get_ydata()) == pytest.approx([10.0, 10.0])
  lm = run_plots.gap_figure(_lm_rows(), LM_CONFIG).axes
  assert lm[0].get_ylabel() == 'nats per token'
  assert lm[1].get_title() == 'train − validation answer accuracy (teacher-forced)'


def test_a_torn_last_metrics_line_is_left_out_and_damaged_files_are_named(tmp_path):
  path = _workdir(tmp_path / 'w', CLASSIFIER, [_row(10, 'train', 1.0, 0.5)])
  with open(path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 20, "split": "tr')  # What a kill mid-write leaves.
  assert len(layout.read_rows(path / 'metrics.jsonl')) == 1
  assert 'metrics up to step 10' in run_report.write_run_report(path)[-1].read_text()
  (path / 'run.json').write_text('{"config_file": ')
  with pytest.raises(UserError, match=r"run\.json is damaged"):
    run_report.write_run_report(path)
