"""Accuracy under perturbation: Gaussian noise, occlusion, and FGSM / PGD adversarial attacks.

Perturbation sizes are multiples of the evaluated inputs' standard deviation (`scale`, recorded
with the curves), so that one set of levels means the same on 0..1 pixels and on MNIST-1D's
signals; the absolute sizes are `level × scale`.

- noise: x + N(0, (level·scale)²), seeded.
- occlusion: a random `fraction` of each example's positions set to the baseline (zeros).
- FGSM (Goodfellow et al., 2015): x + ε·sign(∇ₓ cross-entropy(x, label)).
- PGD (Madry et al., 2018): `pgd_steps` signed-gradient steps of 2.5·ε/steps, each projected back
  into the L∞ ball of radius ε around x; no random start, so the curve is deterministic.
Attacked inputs are clipped to the range of the evaluated inputs (valid pixels stay valid).
Classification only: accuracy has no meaning for a regression run.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.explain import attribution

NOISE_LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
OCCLUDED_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
EPSILONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
PGD_STEPS = 10
CHUNK = 500


def _accuracy(forward, inputs, labels) -> float:
  correct = 0
  for start in range(0, len(inputs), CHUNK):
    logits = forward(jnp.asarray(inputs[start:start + CHUNK]))
    correct += int((np.asarray(logits).argmax(-1) == labels[start:start + CHUNK]).sum())
  return correct / len(inputs)


def _attack_step(forward):
  """One projected signed-gradient step, compiled once per model (ε and the step are traced)."""
  def loss(x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(x), y).sum()

  @jax.jit
  def step(x, x0, y, epsilon, size, low, high):
    x = x + size * jnp.sign(jax.grad(loss)(x, y))
    return jnp.clip(jnp.clip(x, x0 - epsilon, x0 + epsilon), low, high)
  return step


def _attack(step_fn, inputs, labels, epsilon: float, steps: int, low: float, high: float):
  """Projected signed-gradient ascent on the cross-entropy (steps=1, step=ε: FGSM)."""
  size = epsilon if steps == 1 else 2.5 * epsilon / steps
  out = []
  for start in range(0, len(inputs), CHUNK):
    x0 = jnp.asarray(inputs[start:start + CHUNK])
    y = jnp.asarray(labels[start:start + CHUNK])
    x = x0
    for _ in range(steps):
      x = step_fn(x, x0, y, epsilon, size, low, high)
    out.append(np.asarray(x))
  return np.concatenate(out)


def curves(forward, inputs, labels, *, seed: int = 0, pgd_steps: int = PGD_STEPS,
           noise_levels=NOISE_LEVELS, fractions=OCCLUDED_FRACTIONS,
           epsilons=EPSILONS) -> dict:
  """{kind: {'levels': [...], 'accuracy': [...]}} for noise, occlusion, fgsm and pgd, plus
  'scale' (the inputs' std) and 'examples'. `forward`: inputs → logits."""
  inputs = np.asarray(inputs, np.float32)
  labels = np.asarray(labels)
  step_fn = _attack_step(forward)
  forward = jax.jit(forward)
  scale = float(inputs.std()) or 1.0
  low, high = float(inputs.min()), float(inputs.max())
  rng = np.random.default_rng(seed)
  result = {'scale': scale, 'examples': len(inputs)}
  result['noise'] = {'levels': list(noise_levels), 'accuracy': [
      _accuracy(forward, inputs + level * scale * rng.standard_normal(inputs.shape, np.float32),
                labels) for level in noise_levels]}
  reference = np.zeros_like(inputs)
  positions = (len(inputs), *attribution.spatial_shape(inputs.shape[1:]))
  result['occlusion'] = {'levels': list(fractions), 'accuracy': [
      _accuracy(forward, np.asarray(attribution.occlude(
          inputs, reference, attribution.random_positions(positions, f, seed))), labels)
      if f > 0 else _accuracy(forward, inputs, labels) for f in fractions]}
  for kind, steps in (('fgsm', 1), ('pgd', pgd_steps)):
    result[kind] = {'levels': list(epsilons), 'accuracy': [
        _accuracy(forward, _attack(step_fn, inputs, labels, e * scale, steps, low, high), labels)
        if e > 0 else _accuracy(forward, inputs, labels) for e in epsilons]}
  return result


KINDS = {'noise': 'Gaussian noise (std × input std)', 'occlusion': 'occluded fraction',
         'fgsm': 'FGSM ε (× input std)', 'pgd': f'PGD-{PGD_STEPS} ε (× input std)'}


def table(result: dict) -> list[str]:
  """Markdown lines: one row per perturbation kind, accuracy at each level."""
  lines = []
  for kind, title in KINDS.items():
    curve = result[kind]
    lines.append(f'| {title} | ' + ', '.join(
        f'{level:g}: {acc:.3f}' for level, acc in zip(curve['levels'], curve['accuracy'])) + ' |')
  return ['| perturbation | level: accuracy |', '|---|---|', *lines]
