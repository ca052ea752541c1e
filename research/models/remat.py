"""Rematerialization (activation checkpointing) by name: `config.model.remat`.

A rematerialized block keeps fewer of its activations for the backward pass and recomputes the
rest there, trading compute for memory. Policies (jax.checkpoint_policies):
  none           keep everything (no remat, the default);
  full           keep only the block's inputs, recompute the whole block backward;
  dots_saveable  keep matmul outputs, recompute the cheap element-wise ops (LayerNorm, GELU,
                 softmax) — most of full's saving on activations at a fraction of its compute;
  dots_with_no_batch_dims_saveable  keep only the weight matmuls (not attention's QKᵀ / AV).
Numerics are unchanged: the recomputation runs the same operations.
"""
from typing import Any

import jax
from flax import linen as nn

from research.errors import unknown

POLICIES = {
    'none': None,
    'full': None,
    'dots_saveable': jax.checkpoint_policies.dots_saveable,
    'dots_with_no_batch_dims_saveable': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def validate(name: Any) -> str:
  if name not in POLICIES:
    raise unknown('config.model.remat', name, POLICIES)
  return name


def wrap(block: type[nn.Module], name: str, static_argnums: tuple) -> type[nn.Module]:
  """`block` rematerialized under policy `name` (unchanged for 'none'). `static_argnums` counts
  `self` as 0 and must name the Python-valued arguments, such as `train`."""
  if validate(name) == 'none':
    return block
  return nn.remat(block, policy=POLICIES[name], static_argnums=static_argnums)
