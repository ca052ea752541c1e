"""What `research explain` computes on a loaded run's examples, as plain arrays and numbers.

`explain(run, inputs, labels, options)` returns an `Explanation`; nothing here reads or writes
files (output.py does), so a notebook can call it on `research.load_run(...)` directly.

Besides the attributions it measures three things about them (the numbers behind the sanity
checks of tests/test_explain_sanity.py):
  completeness   integrated gradients' |Σ attribution − (f(x) − f(x'))|, absolute and relative
                 to mean |f(x) − f(x')|; it shrinks as `ig_steps` grows.
  deletion       the mean drop of the explained score when each example's top 20% positions by
                 |attribution| are set to the baseline, against 20% chosen at random: a faithful
                 attribution's drop is the larger one.
  concentration  the share of |attribution| in the top 10% of positions (1.0: all in a tenth
                 of the input; 0.1: spread evenly).
  randomization  the rank correlation of |saliency| (and |integrated gradients|) between the
                 trained model and the same architecture with freshly initialized weights
                 (Adebayo et al., 2018): near 1 means the map shows the input, not what the model
                 learned (integrated gradients from a zero baseline lean that way: x − x'
                 multiplies every gradient, so zero inputs get zero attribution under any weights).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from research.core import tokens as tokens_lib
from research.explain import activations as activations_lib
from research.explain import attention as attention_lib
from research.explain import attribution, robustness as robustness_lib, target
from research.explain.methods import ATTRIBUTIONS, METHODS
DELETION_FRACTION = 0.2
CONCENTRATION_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Options:
  """Settings of one explanation; the CLI's flags map one to one onto these fields."""
  methods: tuple = METHODS
  baseline: str = 'zeros'
  ig_steps: int = 32
  smoothgrad_samples: int = 16
  smoothgrad_noise: float = 0.15
  occlusion_window: int | None = None
  robustness: bool = False
  seed: int = 0


@dataclasses.dataclass
class Explanation:
  inputs: np.ndarray
  labels: np.ndarray
  classes: np.ndarray | None  # The explained class of each example (None: regression).
  attributions: dict = dataclasses.field(default_factory=dict)  # {method: [n, ...]}
  measures: dict = dataclasses.field(default_factory=dict)      # {method: {measure: value}}
  attention: dict = dataclasses.field(default_factory=dict)     # {layer: [n, heads, T, T]}
  rollout: np.ndarray | None = None
  layers: list = dataclasses.field(default_factory=list)        # [activations.LayerStats]
  robustness: dict | None = None


def rank_correlation(a, b) -> float:
  """Spearman's correlation of two arrays' flattened values (ties broken by position)."""
  ra = np.argsort(np.argsort(np.ravel(a), kind='stable'), kind='stable').astype(np.float64)
  rb = np.argsort(np.argsort(np.ravel(b), kind='stable'), kind='stable').astype(np.float64)
  return float(np.corrcoef(ra, rb)[0, 1])


def randomized_run(run, seed: int = 0):
  """A copy of `run` whose parameters are a fresh initialization of the same architecture."""
  example = jnp.zeros((1, *run.dataset.info.input_shape), run.dataset.info.input_dtype)
  fresh = run.model.init({'params': jax.random.PRNGKey(seed + 1),
                          'dropout': jax.random.PRNGKey(seed + 2)}, example, train=False)
  return dataclasses.replace(run, params=fresh['params'])


def attribute(run, inputs, method: str, options: Options, classes=None) -> np.ndarray:
  """One attribution method's map for `inputs` [n, ...] (see attribution.py)."""
  score = target.score_function(run, classes)
  reference = attribution.baseline(np.asarray(inputs), options.baseline)
  if method == 'saliency':
    return attribution.saliency(score, inputs)
  if method == 'smoothgrad':
    return attribution.smoothgrad(score, inputs, samples=options.smoothgrad_samples,
                                  noise=options.smoothgrad_noise, seed=options.seed)
  if method == 'integrated_gradients':
    return attribution.integrated_gradients(score, inputs, reference, steps=options.ig_steps)
  if method == 'occlusion':
    return attribution.occlusion(score, inputs, reference, window=options.occlusion_window)
  raise ValueError(f'not an attribution method: {method!r}')


def deletion_drops(score, inputs, reference, attributions, fraction: float = DELETION_FRACTION,
                   seed: int = 0) -> tuple[float, float]:
  """(mean score drop with the top `fraction` positions occluded, the same with random ones)."""
  x = jnp.asarray(inputs)
  original = np.asarray(score(x))
  top = attribution.top_positions(attributions, fraction)
  random = attribution.random_positions(top.shape, fraction, seed)
  drops = [float((original - np.asarray(score(attribution.occlude(x, reference, m)))).mean())
           for m in (top, random)]
  return drops[0], drops[1]


def _measure(run, inputs, classes, method, attr, options) -> dict:
  score = target.score_function(run, classes)
  reference = attribution.baseline(np.asarray(inputs), options.baseline)
  top, random = deletion_drops(score, inputs, reference, attr, seed=options.seed)
  measures = {'deletion_drop_top': top, 'deletion_drop_random': random,
              'concentration_top10': float(attribution.concentration(
                  attr, CONCENTRATION_FRACTION).mean())}
  if method == 'integrated_gradients':
    error = attribution.completeness_error(score, inputs, reference, attr)
    gap = np.abs(np.asarray(score(jnp.asarray(inputs))) - np.asarray(score(jnp.asarray(reference))))
    measures['completeness_error'] = float(error.mean())
    measures['completeness_relative'] = float(error.mean() / max(gap.mean(), 1e-12))
  if method in ('saliency', 'integrated_gradients'):
    random_attr = attribute(randomized_run(run, options.seed), inputs, method, options, classes)
    measures['randomization_rank_correlation'] = rank_correlation(
        np.abs(attr), np.abs(random_attr))
  return measures


def token_labels(tokens) -> list[str]:
  """Axis labels for a row of byte tokens: the characters, PAD shown as '·'."""
  return ['·' if t == tokens_lib.PAD else (chr(t) if 32 <= t < 127 else f'\\x{t:02x}')
          for t in np.asarray(tokens).tolist()]


def explain(run, inputs, labels, options: Options, *, stats_inputs=None,
            robustness_inputs=None, robustness_labels=None) -> Explanation:
  """Runs `options.methods` on `inputs` [n, ...] (and the robustness curves, if asked).

  `stats_inputs`: the (usually more) examples activation statistics are taken over (default
  `inputs`); `robustness_inputs`/`labels`: those the accuracy curves are measured on."""
  inputs, labels = np.asarray(inputs), np.asarray(labels)
  real = not target.is_token_model(run)
  classes = target.predicted_classes(run, inputs) if real else None
  result = Explanation(inputs=inputs, labels=labels, classes=classes)
  for method in options.methods:
    if method in ATTRIBUTIONS:
      target.needs_real_inputs(run, method)
      attr = attribute(run, inputs, method, options, classes)
      result.attributions[method] = attr
      result.measures[method] = _measure(run, inputs, classes, method, attr, options)
  if 'attention' in options.methods:
    _, maps = attention_lib.apply_with_attention(run.model, run.variables, inputs)
    result.attention = maps
    result.rollout = attention_lib.rollout(list(maps.values())) if maps else None
  if 'activations' in options.methods:
    chosen = inputs if stats_inputs is None else np.asarray(stats_inputs)
    result.layers = activations_lib.layer_statistics(run.config, run.model, run.variables, chosen)
  if options.robustness:
    target.needs_real_inputs(run, 'robustness')
    x = inputs if robustness_inputs is None else robustness_inputs
    y = labels if robustness_labels is None else robustness_labels
    result.robustness = robustness_lib.curves(target.logits_function(run), x, y,
                                              seed=options.seed)
    result.robustness['chance'] = 1.0 / run.dataset.info.num_classes
  return result
