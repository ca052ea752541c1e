"""What a model needs to know about its run, beyond its own config fields."""
import dataclasses
from typing import Any

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Context:
  """Passed to every family's `from_config(cfg, ctx)`.

  num_outputs: classes for a classifier, vocabulary size for a token model.
  input_shape: one example's input shape, e.g. (28, 28, 1), (40,), (2048,) or (seq_len,).
  dtype: the computation dtype (float32, or bfloat16 for mixed precision); parameters and the
    optimizer state stay float32 and logits are returned as float32.
  axis_name: the pmap axis over which BatchNorm must average its statistics (None under a mesh,
    where the batch is one global array and the average is global already).
  """
  num_outputs: int
  input_shape: tuple
  dtype: Any = jnp.float32
  axis_name: str | None = None
  sample_rate: int | None = None  # Audio samples per second of a speech dataset, else None.


def with_channels(inputs: jnp.ndarray, dtype: Any) -> jnp.ndarray:
  """Inputs with a trailing channel axis, in the computation dtype.

  [B, L] (1-D signals, one value a step) gains a channel: [B, L, 1]; images keep theirs.
  """
  x = inputs[..., None] if inputs.ndim == 2 else inputs
  return x.astype(dtype)
