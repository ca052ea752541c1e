"""Per-layer activation statistics: mean, std, dead ReLUs, saturated sigmoids and tanh units.

Activation functions are plain functions inside the models (`nn.relu(Dense(x))`), not modules,
so Flax's `capture_intermediates` records the layers that feed them (Dense, Conv, BatchNorm
outputs) and the family's known activation is applied here:

  mlp          every hidden Dense → config.model.activation (the seed's relu / sigmoid / tanh)
  cnn          every Conv, and LeNet's two hidden Dense → relu
  vgg, resnet  every BatchNorm → relu (a ResNet block's last BatchNorm is added to the shortcut
               before its relu, so there the statistic is of the relu of the branch alone)
  gpt, bert    each block's mlp_in → gelu;  vit: each encoder block's first Dense → gelu
  others       every Dense / Conv output, shown as a pre-activation (no dead / saturated counts)

Definitions (per layer, over the examples given):
  dead fraction       units (features, or channels of a conv) whose ReLU output is 0 on every
                      example and position: they pass no gradient, so they stay dead.
  saturated fraction  outputs with sigmoid(z) < 0.01 or > 0.99, or |tanh(z)| > 0.99: where the
                      derivative is below ~0.01 (sigmoid) or ~0.02 (tanh) and learning stalls.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

FUNCTIONS = {'relu': jax.nn.relu, 'sigmoid': jax.nn.sigmoid, 'tanh': jnp.tanh,
             'gelu': jax.nn.gelu, 'pre-activation': lambda z: z}
SATURATION = 0.99
HISTOGRAM_SAMPLE = 20_000


@dataclasses.dataclass(frozen=True)
class LayerStats:
  """One layer's statistics; `sample` holds up to 20,000 of its activations for histograms."""
  layer: str
  activation: str
  units: int
  mean: float
  std: float
  dead_fraction: float | None
  saturated_fraction: float | None
  sample: np.ndarray = dataclasses.field(repr=False)

  def row(self) -> dict:
    return {k: v for k, v in dataclasses.asdict(self).items() if k != 'sample'}


def _family_activation(config, path: tuple, module_type: str) -> str | None:
  """The activation that reads this layer's output, or None if the layer is not one to report."""
  name, model = config.model.name, config.model
  last = path[-1]
  index = int(last.rsplit('_', 1)[1]) if last.rsplit('_', 1)[-1].isdigit() else -1
  if name == 'mlp':
    return model.activation if module_type == 'Dense' and index < len(model.hidden_sizes) else None
  if name == 'cnn':
    hidden_dense = 2 if model.variant == 'lenet' else 0
    return 'relu' if module_type == 'Conv' or (module_type == 'Dense' and index < hidden_dense) \
        else None
  if name in ('vgg', 'resnet'):
    return 'relu' if module_type == 'BatchNorm' else None
  if name in ('gpt', 'bert'):
    return 'gelu' if last == 'mlp_in' else None
  if name == 'vit':
    return 'gelu' if any('EncoderBlock' in p for p in path) and last == 'Dense_0' else None
  return 'pre-activation' if module_type in ('Dense', 'Conv') else None


def _kind(module: nn.Module) -> str | None:
  """'Dense', 'Conv' or 'BatchNorm' for the layers reported; the models' matmul convolutions
  (cnn.py's WindowConv, nn.Conv's parameters) count as 'Conv'."""
  name = type(module).__name__
  if name in ('Dense', 'Conv', 'BatchNorm'):
    return name
  return 'Conv' if name == 'WindowConv' else None


def _captured(model: nn.Module, variables: dict, inputs):
  return model.apply(
      variables, inputs, train=False, mutable=['intermediates'],
      capture_intermediates=lambda m, method: method == '__call__' and _kind(m) is not None)[1]


def _capture(model: nn.Module, variables: dict, inputs) -> dict:
  state = jax.jit(_captured, static_argnums=0)(model, variables, jnp.asarray(inputs))
  flat = traverse_util.flatten_dict(jax.device_get(state['intermediates']))
  return {k[:-1]: np.asarray(v[0], np.float32) for k, v in flat.items() if k[-1] == '__call__'}


def _module_types(model: nn.Module, variables: dict, inputs) -> dict:
  """{layer path: 'Dense' | 'Conv' | 'BatchNorm'}: the class of every captured module."""
  types = {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == '__call__' and _kind(context.module) is not None:
      types[tuple(context.module.scope.path)] = _kind(context.module)
    return next_fun(*args, **kwargs)

  def trace(v, x):
    with nn.intercept_methods(record):
      return model.apply(v, x, train=False)

  jax.eval_shape(trace, variables, jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype))
  return types


def layer_statistics(config, model: nn.Module, variables: dict, inputs) -> list[LayerStats]:
  """Statistics of every reported layer (see the module docstring), in the model's order."""
  captured = _capture(model, variables, inputs)
  types = _module_types(model, variables, inputs)
  order = list(types)
  stats = []
  for path in sorted(captured, key=lambda p: order.index(p) if p in order else len(order)):
    activation = _family_activation(config, path, types.get(path, ''))
    if activation is None:
      continue
    values = np.asarray(FUNCTIONS[activation](jnp.asarray(captured[path])))
    units = values.reshape(-1, values.shape[-1])
    dead = float((units.max(axis=0) <= 0).mean()) if activation == 'relu' else None
    saturated = None
    if activation == 'sigmoid':
      saturated = float(((values < 1 - SATURATION) | (values > SATURATION)).mean())
    elif activation == 'tanh':
      saturated = float((np.abs(values) > SATURATION).mean())
    flat = values.ravel()
    step = max(1, len(flat) // HISTOGRAM_SAMPLE)
    stats.append(LayerStats(layer='/'.join(path), activation=activation, units=units.shape[1],
                            mean=float(flat.mean()), std=float(flat.std()), dead_fraction=dead,
                            saturated_fraction=saturated, sample=flat[::step][:HISTOGRAM_SAMPLE]))
  return stats
