"""What an attribution explains: one real number per example, computed from a loaded run.

Classification: the logit of one class per example (by default the class the model predicts),
not its probability: the logit is what the last layer computes, and a softmax's saturation would
make every gradient of a confident prediction vanish. Regression: the model's output, averaged
over the target's dimensions (a forecast horizon), in standardized units (the same as training).
Token models (GPT, BERT) read integer tokens: no gradient reaches an input, so gradient methods,
occlusion and robustness refuse them (`needs_real_inputs`); attention and activations apply.
"""
import jax
import jax.numpy as jnp
import numpy as np

from research.errors import UserError


def is_token_model(run) -> bool:
  return run.dataset.info.input_dtype != 'float32'


def needs_real_inputs(run, what: str) -> None:
  if is_token_model(run):
    raise UserError(f"{what} needs real-valued inputs, but this {run.config.model.name!r} model "
                    "reads integer tokens; for it use --method attention,activations")


def logits_function(run):
  """inputs [n, ...] → raw model outputs, evaluation mode (no dropout, stored BatchNorm stats)."""
  variables = run.variables
  return lambda x: run.model.apply(variables, x, train=False)


def score_function(run, classes=None):
  """The function attributions explain: inputs [n, ...] → [n] (see the module docstring).

  `classes`: one class per example for classification (None: each example's predicted class,
  fixed at the inputs given to `predicted_classes`)."""
  forward = logits_function(run)
  if run.config.task == 'regression':
    return jax.jit(lambda x: forward(x).reshape(x.shape[0], -1).mean(axis=1))
  if classes is None:
    raise ValueError('classification scores need the classes to explain (predicted_classes)')
  chosen = jnp.asarray(classes)
  return jax.jit(lambda x: jnp.take_along_axis(forward(x), chosen[:, None], axis=1)[:, 0])


def predicted_classes(run, inputs) -> np.ndarray | None:
  """Each example's predicted class (None for regression)."""
  if run.config.task == 'regression':
    return None
  return np.asarray(jax.jit(logits_function(run))(jnp.asarray(inputs))).argmax(axis=-1)
