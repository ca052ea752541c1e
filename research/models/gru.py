"""A GRU sequence classifier: the MNIST-1D paper's recurrent baseline (Greydanus 2020).

The paper's GRU reads the 40-long signal one value per step (input size 1) with one bidirectional
layer of hidden size 6 and classifies with one linear layer on the states of *all* time steps,
flattened (40 · 2 · 6 = 480 features). Those are the defaults here (`readout='all'`).

Parameter count: flax's `GRUCell` puts a bias on each input projection (r, z, n) but only on the
recurrent projection of n, because the r and z biases would be summed with the input ones anyway.
Per direction and layer that is 3·h·in + 3·h + 3·h·h + h parameters; PyTorch's `nn.GRU` keeps both
redundant bias vectors (3·h·in + 3·h·h + 6·h). So the default model has 2·150 + (480·10 + 10) =
5,110 parameters here, against the paper's 5,134 — the same function class, 24 fewer redundant
biases.

With `readout='all'` the readout's width depends on the sequence length, so a model is tied to the
length it was initialized with; `readout='last'` (the final forward state, concatenated with the
backward direction's state after it has read the whole sequence back to time 0) is not.

`weight_init='flax'` (default) keeps flax's initializers (GRUCell: LeCun-normal input kernel,
orthogonal recurrent kernel, zero biases; readout: LeCun-normal kernel, zero bias);
`weight_init='pytorch'` starts the model as the MNIST-1D paper's PyTorch model started: every GRU
weight and bias from U(-1/sqrt(h), 1/sqrt(h)) as `nn.GRU` draws them, and the readout's weight and
bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as `nn.Linear` does (fan_in = 480 by default). With
input size 1 the difference is large: flax's input weights have standard deviation 1, PyTorch's
0.24 (h = 6). One difference remains: PyTorch adds two such bias vectors in the r and z gates,
flax's cell has one, so those gates' biases start with half PyTorch's variance.
"""
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError, unknown
from research.models import checks
from research.models.context import Context, with_channels

READOUTS = ('all', 'last')
INITS = ('flax', 'pytorch')


def _uniform(bound: float):
  """An initializer drawing from U(-bound, bound), as PyTorch's recurrent and linear layers do."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class Model(nn.Module):
  """Stacked (optionally bidirectional) GRU layers, then dropout and a linear readout."""
  num_outputs: int
  hidden_size: int = 6
  bidirectional: bool = True
  num_layers: int = 1
  readout: str = 'all'
  dropout_rate: float = 0.0
  weight_init: str = 'flax'
  dtype: Any = jnp.float32

  def _layer(self, depth: int) -> nn.Module:
    """One layer; its cells are named `layer{depth}_forward` / `layer{depth}_backward`."""
    def rnn(direction):
      initializers = {}
      if self.weight_init == 'pytorch':
        uniform = _uniform(self.hidden_size ** -0.5)
        initializers = dict(kernel_init=uniform, recurrent_kernel_init=uniform, bias_init=uniform)
      cell = nn.GRUCell(self.hidden_size, dtype=self.dtype, param_dtype=jnp.float32,
                        name=f'layer{depth}_{direction}', **initializers)
      return nn.RNN(cell, return_carry=True)
    if self.bidirectional:
      return nn.Bidirectional(rnn('forward'), rnn('backward'), return_carry=True)
    return rnn('forward')

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    for depth in range(self.num_layers):
      if depth:  # Between stacked layers, as PyTorch's `nn.GRU(dropout=...)` does.
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      # x: [B, L, directions · h], in time order for both directions.
      carry, x = self._layer(depth)(x)
    if self.readout == 'all':
      features = x.reshape((x.shape[0], -1))
    else:  # 'last': a bidirectional carry is (forward final state, backward final state).
      features = jnp.concatenate(carry, axis=-1) if self.bidirectional else carry
    features = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    initializers = {}
    if self.weight_init == 'pytorch':
      uniform = _uniform(features.shape[-1] ** -0.5)
      initializers = dict(kernel_init=uniform, bias_init=uniform)
    logits = nn.Dense(self.num_outputs, dtype=self.dtype, param_dtype=jnp.float32,
                      name='readout', **initializers)(features)
    return logits.astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  checks.positive_int('hidden_size', cfg.hidden_size)
  checks.positive_int('num_layers', cfg.num_layers)
  if not isinstance(cfg.bidirectional, bool):
    raise UserError(f"config.model.bidirectional must be true or false, "
                    f"got {cfg.bidirectional!r}")
  if cfg.readout not in READOUTS:
    raise unknown('config.model.readout', cfg.readout, READOUTS)
  checks.dropout_rate(cfg.dropout_rate)
  if cfg.weight_init not in INITS:
    raise unknown('config.model.weight_init', cfg.weight_init, INITS)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  return Model(num_outputs=ctx.num_outputs, hidden_size=cfg.hidden_size,
               bidirectional=cfg.bidirectional, num_layers=cfg.num_layers, readout=cfg.readout,
               dropout_rate=cfg.dropout_rate, weight_init=cfg.weight_init, dtype=ctx.dtype)
