"""`research explain`: the attribution sanity checks, attention capture, activation statistics,
robustness curves, and the command's output and bad input, on tiny runs trained once per module.

The three sanity checks of the issue:
  completeness   integrated gradients sum to f(x) − f(baseline) within 1/steps of |f(x) − f(x')|
                 (relative), and the error at 64 steps is below the error at 4;
  randomization  saliency and SmoothGrad maps of the trained model and of freshly initialized
                 weights are nearly uncorrelated (Adebayo et al., 2018): rank correlation < 0.5.
                 Integrated gradients from a zero baseline do NOT pass it on digits (measured 0.92
                 on the MLP): x − x' multiplies the gradient, so the map keeps the input's shape
                 whatever the weights, which is Adebayo et al.'s own finding for gradient⊙input;
                 the test states that too, so a change in it is seen;
  deletion       occluding each example's top-20% attributed positions lowers the explained logit
                 more than occluding 20% at random, for every method, MLP and 1-D CNN.
"""
import hashlib
import json
import pathlib
import shutil

import jax
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

import research
from conftest import run_cli
from research import config as config_lib
from research.errors import UserError
from research.explain import activations, attention, attribution, compute, robustness, target
from research.explain import workdir as explain_workdir
from research.models import mlp as mlp_lib
from test_cli_usability import _without_jax

RUNS = {  # Small and short, but trained enough for attributions to mean something.
    'mlp': ('configs/default.py', dict(total_steps=300)),
    'cnn': ('configs/mnist1d_cnn.py', dict(total_steps=600, eval_every=600)),
    'gpt': ('configs/gpt_addition.py', {
        'total_steps': 20, 'eval_every': 20, 'model.hidden_size': 32, 'model.mlp_dim': 64,
        'model.num_heads': 2, 'dataset.seq_len': 16, 'optimizer.warmup_steps': 2}),
    'regression': ('configs/diabetes_mlp.py', dict(total_steps=30)),
}


def _train(name: str, path: pathlib.Path) -> str:
  spec, overrides = RUNS[name]
  config = config_lib.load(spec)
  config_lib.apply_overrides(config, [f'{k}={v}' for k, v in overrides.items()])
  config.num_devices = 1
  research.train_and_evaluate(config, str(path))
  return str(path)


class _Runs(dict):
  """The RUNS' workdirs, each trained on first use (so `-k` selections train only theirs)."""

  def __init__(self, root: pathlib.Path):
    super().__init__()
    self.root = root

  def __missing__(self, name: str) -> str:
    self[name] = _train(name, self.root / name)
    return self[name]


@pytest.fixture(scope='module')
def workdirs(tmp_path_factory) -> dict:
  return _Runs(tmp_path_factory.mktemp('explain'))


@pytest.fixture(scope='module')
def loaded(workdirs) -> dict:
  runs = {}
  for name in ('mlp', 'cnn'):
    run = research.load_run(workdirs[name])
    inputs, labels = run.batch('test', 32)
    runs[name] = (run, inputs, labels, target.predicted_classes(run, inputs))
  return runs


def _fingerprint(workdir: str) -> dict:
  """Hashes of every file of the run itself (DIR/explain/ aside)."""
  root = pathlib.Path(workdir)
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob('*')) if p.is_file() and 'explain' not in p.parts}


def test_methods_on_a_linear_score_have_their_closed_forms():
  """score(x) = w·x: saliency = w, SmoothGrad = w, IG from 0 = w·x exactly, occlusion of one
  position to 0 = w·x."""
  w = np.arange(1.0, 13.0, dtype=np.float32).reshape(3, 4) / 10
  x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
  score = lambda v: (v * w[None]).reshape(len(v), -1).sum(axis=1)
  np.testing.assert_allclose(attribution.saliency(score, x), np.broadcast_to(w, x.shape))
  np.testing.assert_allclose(attribution.smoothgrad(score, x, samples=3), np.broadcast_to(w, x.shape),
                             rtol=1e-6)
  np.testing.assert_allclose(attribution.integrated_gradients(score, x, np.zeros_like(x), steps=3),
                             x * w, rtol=1e-5, atol=1e-6)
  x3 = x[..., None]  # [n, H, W, 1]: occlusion hides a position's channels
  score3 = lambda v: score(v[..., 0])
  np.testing.assert_allclose(attribution.occlusion(score3, x3, np.zeros_like(x3), window=1)[..., 0],
                             x * w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', ['mlp', 'cnn'])
def test_integrated_gradients_completeness_tightens_with_steps(loaded, name):
  run, inputs, _, classes = loaded[name]
  score = target.score_function(run, classes)
  reference = attribution.baseline(inputs, 'zeros')
  gap = np.abs(np.asarray(score(inputs)) - np.asarray(score(reference))).mean()
  errors = {}
  for steps in (4, 16, 64):
    attr = attribution.integrated_gradients(score, inputs, reference, steps=steps)
    errors[steps] = attribution.completeness_error(score, inputs, reference, attr).mean() / gap
    assert errors[steps] <= 1.0 / steps, (steps, errors)
  assert errors[64] < errors[4], errors


@pytest.mark.parametrize('name', ['mlp', 'cnn'])
def test_attributions_of_randomized_weights_differ_from_the_trained_models(loaded, name):
  run, inputs, _, classes = loaded[name]
  options = compute.Options()
  correlations = {}
  for method in ('saliency', 'smoothgrad', 'integrated_gradients'):
    trained = compute.attribute(run, inputs, method, options, classes)
    randomized = compute.attribute(compute.randomized_run(run), inputs, method, options, classes)
    correlations[method] = compute.rank_correlation(np.abs(trained), np.abs(randomized))
    assert compute.rank_correlation(np.abs(trained), np.abs(trained)) == pytest.approx(1.0)
  assert correlations['saliency'] < 0.5 and correlations['smoothgrad'] < 0.5, correlations
  if name == 'mlp':  # Zero pixels get zero IG under any weights: the input's shape remains.
    assert correlations['integrated_gradients'] > 0.5, correlations


@pytest.mark.parametrize('name', ['mlp', 'cnn'])
def test_occluding_top_attributed_positions_lowers_the_prediction_more_than_random(loaded, name):
  run, inputs, _, classes = loaded[name]
  score = target.score_function(run, classes)
  reference = attribution.baseline(inputs, 'zeros')
  for method in compute.ATTRIBUTIONS:
    attr = compute.attribute(run, inputs, method, compute.Options(), classes)
    top, random = compute.deletion_drops(score, inputs, reference, attr)
    assert top > random, (method, top, random)


def test_attention_is_captured_without_changing_outputs_and_rollout_is_causal(workdirs):
  run = research.load_run(workdirs['gpt'])
  inputs, _ = run.batch('test', 4)
  outputs, maps = attention.apply_with_attention(run.model, run.variables, inputs)
  plain = jax.jit(lambda v, x: run.model.apply(v, x, train=False))(run.variables, inputs)
  np.testing.assert_array_equal(outputs, np.asarray(plain))  # Bit-identical to the same program.
  np.testing.assert_allclose(outputs, run.predict(inputs), rtol=1e-5, atol=1e-6)  # vs eager.
  assert list(maps) == ['decoder/block_0/attention', 'decoder/block_1/attention']
  length = inputs.shape[1]
  for weights in maps.values():
    assert weights.shape == (4, 2, length, length)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(weights, k=1)).max() == 0  # Causal: no query sees a later key.
  rolled = attention.rollout(list(maps.values()))
  np.testing.assert_allclose(rolled.sum(-1), 1.0, atol=1e-9)
  assert np.abs(np.triu(rolled, k=1)).max() < 1e-12
  assert attention.entropy(maps['decoder/block_0/attention']).shape == (2,)


def test_activation_statistics_count_dead_relus_and_saturated_units():
  """Hand-set weights: 2 of 4 ReLU units can never fire on positive inputs; a sigmoid layer with
  huge weights is saturated everywhere, and one with zero weights nowhere."""
  inputs = np.abs(np.random.default_rng(0).normal(size=(64, 3))).astype(np.float32) + 0.1
  for activation, kernel, dead, saturated in (
      ('relu', np.array([[1, -1, 1, -1]] * 3, np.float32), 0.5, None),
      ('sigmoid', np.full((3, 4), 50.0, np.float32), None, 1.0),
      ('tanh', np.zeros((3, 4), np.float32), None, 0.0)):
    model = mlp_lib.MLP(hidden_sizes=(4,), num_outputs=2,
                                    activation=getattr(nn, activation))
    params = {'Dense_0': {'kernel': kernel, 'bias': np.zeros(4, np.float32)},
              'Dense_1': {'kernel': np.ones((4, 2), np.float32), 'bias': np.zeros(2, np.float32)}}
    config = ml_collections.ConfigDict({'model': {'name': 'mlp', 'activation': activation,
                                                  'hidden_sizes': (4,)}})
    layer, = activations.layer_statistics(config, model, {'params': params}, inputs)
    assert (layer.layer, layer.activation, layer.units) == ('Dense_0', activation, 4)
    assert layer.dead_fraction == dead and layer.saturated_fraction == saturated


def test_robustness_curves_start_at_clean_accuracy_and_fall(loaded):
  run, inputs, labels, _ = loaded['mlp']
  forward = target.logits_function(run)
  curves = robustness.curves(forward, inputs, labels, pgd_steps=5)
  clean = float((np.asarray(forward(inputs)).argmax(-1) == labels).mean())
  for kind in ('noise', 'occlusion', 'fgsm', 'pgd'):
    assert curves[kind]['accuracy'][0] == clean and curves[kind]['accuracy'][-1] < clean, kind
  assert curves['pgd']['accuracy'][-1] <= curves['fgsm']['accuracy'][-1]  # PGD: the stronger.
  assert len(robustness.table(curves)) == 6


def test_explain_command_writes_figures_and_summary_and_leaves_the_run_alone(workdirs):
  before = _fingerprint(workdirs['mlp'])
  result = run_cli('explain', '--workdir', workdirs['mlp'], '--examples', '4', '--robustness',
                   '--robustness-examples', '64', '--ig-steps', '16')
  assert result.returncode == 0, result.stderr[-3000:]
  out = pathlib.Path(workdirs['mlp']) / 'explain'
  assert sorted(p.name for p in out.iterdir()) == sorted(
      ['summary.md', 'explain.json', 'attributions.png', 'activations.png', 'robustness.png'])
  assert result.stdout.count('wrote ') == 5
  record = json.loads((out / 'explain.json').read_text())
  assert record['methods'] == ['saliency', 'smoothgrad', 'integrated_gradients', 'occlusion',
                               'activations']
  assert record['measures']['integrated_gradients']['completeness_relative'] < 1 / 16
  assert [l['layer'] for l in record['activations']['layers']] == ['Dense_0', 'Dense_1']
  assert record['robustness']['examples'] == 64
  summary = (out / 'summary.md').read_text()
  assert '## Robustness' in summary and '![attributions](attributions.png)' in summary
  assert _fingerprint(workdirs['mlp']) == before


def test_explain_in_python_on_the_cnn_gpt_and_a_regression_run(workdirs):
  numbers, paths = explain_workdir.explain_workdir(workdirs['cnn'], examples=2,
                                                   methods=['occlusion,activations'])
  assert numbers['measures']['occlusion']['deletion_drop_top'] > 0 and len(paths) == 4
  numbers, paths = explain_workdir.explain_workdir(workdirs['gpt'], examples=2)
  assert numbers['methods'] == ['attention', 'activations']
  assert {p.name for p in paths} >= {'attention.png', 'activations.png'}
  numbers, _ = explain_workdir.explain_workdir(workdirs['regression'], examples=3,
                                               methods=['integrated_gradients'])
  assert numbers['measures']['integrated_gradients']['completeness_relative'] < 1 / 32
  assert 'explained_classes' not in numbers


@pytest.mark.parametrize('name, kwargs, needle', [
    ('mlp', dict(methods=['attention']), "attention maps need attention layers, and this 'mlp'"),
    ('mlp', dict(split='dev'), "unknown split 'dev'"),
    ('mlp', dict(examples=361), "--examples 361 is more than the 'test' split's 360 examples"),
    ('gpt', dict(methods=['saliency']), 'saliency needs real-valued inputs'),
    ('gpt', dict(options=compute.Options(robustness=True)), '--robustness needs real-valued'),
    ('regression', dict(options=compute.Options(robustness=True)),
     'a regression run does not have'),
])
def test_bad_requests_are_refused_and_change_nothing(workdirs, tmp_path, name, kwargs, needle):
  workdir = tmp_path / name  # A copy: the shared run keeps whatever explain/ it has.
  shutil.copytree(workdirs[name], workdir, ignore=shutil.ignore_patterns('explain'))
  before = _fingerprint(str(workdir))
  with pytest.raises(UserError) as error:
    explain_workdir.explain_workdir(str(workdir), **kwargs)
  assert needle in str(error.value)
  assert _fingerprint(str(workdir)) == before and not (workdir / 'explain').exists()


def test_bad_input_on_the_command_line_is_one_line_and_exit_2(workdirs, tmp_path):
  unfinished = tmp_path / 'unfinished'
  shutil.copytree(workdirs['mlp'], unfinished, ignore=shutil.ignore_patterns('explain'))
  (unfinished / 'summary.json').unlink()
  before = _fingerprint(str(unfinished))
  result = run_cli('explain', '--workdir', str(unfinished))
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines() == [
      f"research explain: error: workdir {str(unfinished)!r} holds no finished run (no "
      "summary.json): finish its training first (rerun its train command; it resumes)"]
  assert _fingerprint(str(unfinished)) == before and not (unfinished / 'explain').exists()
  report = _without_jax(  # Typos fail before JAX is imported.
      ['explain', '--workdir', str(unfinished), '--method', 'saliency,integrated_gradient'],
      ['explain', '--workdir', str(unfinished), '--examples', '0'],
      ['explain', '--workdir', str(unfinished), '--baseline', 'blur'])
  assert not report['jax']
  for result, needle in zip(report['results'], ("did you mean 'integrated_gradients'",
                                                 '--examples: must be an integer >= 1',
                                                 "invalid choice: 'blur'")):
    assert result['code'] == 2 and len(result['stderr'].splitlines()) == 1, result
    assert needle in result['stderr'], result
