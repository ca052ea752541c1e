"""Attention maps of any model built from Flax's MultiHeadDotProductAttention (GPT, BERT, ViT).

The weights are captured without touching the model code: a method interceptor asks each
attention layer's `__call__` to `sow_weights` (Flax sows the softmax probabilities into the
'intermediates' collection), and `apply` returns them beside unchanged outputs. Sowing only
records a value, so logits are bit-identical to a plain jitted `apply` (tests/test_explain.py).

`rollout` is attention rollout (Abnar & Zuidema, 2020): average the heads of each layer, add the
identity for the residual connection (0.5·A + 0.5·I), renormalize rows, and multiply the layers'
matrices from the first to the last: how much each output position draws, through every layer,
on each input position.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util


def _sow_attention(next_fun, args, kwargs, context):
  if isinstance(context.module, nn.MultiHeadDotProductAttention) and (
      context.method_name == '__call__'):
    kwargs = {**kwargs, 'sow_weights': True}
  return next_fun(*args, **kwargs)


def _sowing(model: nn.Module, variables: dict, inputs):
  with nn.intercept_methods(_sow_attention):  # Runs while tracing: nothing stays installed.
    return model.apply(variables, inputs, train=False, mutable=['intermediates'])


_apply_sowing = jax.jit(_sowing, static_argnums=0)


def has_attention(model: nn.Module, variables: dict, example_shape: tuple, dtype) -> bool:
  """Whether the model sows any attention weights (traced only: nothing is computed)."""
  _, state = jax.eval_shape(lambda v, x: _sowing(model, v, x), variables,
                            jax.ShapeDtypeStruct((1, *example_shape), dtype))
  flat = traverse_util.flatten_dict(state.get('intermediates', {}))
  return any(k[-1] == 'attention_weights' for k in flat)


def apply_with_attention(model: nn.Module, variables: dict, inputs) -> tuple[np.ndarray, dict]:
  """(the model's outputs, {layer path: weights [n, heads, queries, keys]}) in evaluation mode.

  The dict is empty when the model has no attention layer."""
  outputs, state = _apply_sowing(model, variables, jnp.asarray(inputs))
  flat = traverse_util.flatten_dict(jax.device_get(state.get('intermediates', {})))
  maps = {'/'.join(k[:-1]): np.asarray(v[0]) for k, v in flat.items()
          if k[-1] == 'attention_weights'}
  return np.asarray(outputs), dict(sorted(maps.items(), key=lambda kv: _layer_order(kv[0])))


def _layer_order(path: str) -> tuple:
  """Sorts 'decoder/block_10/attention' after 'decoder/block_2/attention'."""
  return tuple(int(p) if p.isdigit() else p for part in path.split('/')
               for p in part.rsplit('_', 1))


def rollout(layers: list[np.ndarray]) -> np.ndarray:
  """Attention rollout [n, queries, keys] of per-layer weights [n, heads, queries, keys]."""
  result = None
  for weights in layers:
    mean = np.asarray(weights, np.float64).mean(axis=1)
    eye = np.eye(mean.shape[-1])
    mixed = 0.5 * mean + 0.5 * eye
    mixed /= mixed.sum(axis=-1, keepdims=True)
    result = mixed if result is None else mixed @ result
  return result


def entropy(weights: np.ndarray) -> np.ndarray:
  """Mean entropy (nats) of each head's attention rows [heads]: low = focused, high = diffuse."""
  p = np.clip(np.asarray(weights, np.float64), 1e-12, 1.0)
  return -(p * np.log(p)).sum(axis=-1).mean(axis=(0, 2))
