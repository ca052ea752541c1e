"""Speed accounting: FLOPs per training step and model FLOPs utilization (MFU).

FLOPs come from XLA's cost analysis of the *unpartitioned* step (`jax.jit(step).lower(...)`
before SPMD partitioning), so they are the FLOPs of the whole global batch, whatever the device
layout, and exclude collectives and rematerialization's recomputation (MFU, not HFU). For the
Transformer families `transformer_train_flops` gives the usual formula, 6·N·tokens (forward +
backward through the weights) plus attention's 12·layers·T²·d per sequence, which the tests
check against the cost analysis.

MFU = FLOPs per step x steps per second / the peak FLOP/s of the devices the run used. Accelerator
peaks come from the vendors' dense (no sparsity) tables below; a CPU's is measured once per
process with a jitted matmul (never at import), and is the whole host's: fake CPU devices share
its cores.
"""
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# device_kind substring → (bfloat16, float32) dense peak FLOP/s per device (chip or GPU).
# float32 on GPUs is the TF32 tensor-core rate that XLA uses for float32 matmuls by default.
PEAKS = {
  'TPU v4': (275e12, 275e12),
  'TPU v5 lite': (197e12, 197e12),  # v5e
  'TPU v5e': (197e12, 197e12),
  'TPU v5p': (459e12, 459e12),
  'TPU v5': (459e12, 459e12),
  'TPU v6 lite': (918e12, 918e12),  # Trillium (v6e)
  'A100': (312e12, 156e12),
  'H100': (989e12, 494e12),  # SXM
  'H200': (989e12, 494e12),
}


def device_peak(device_kind: str, dtype: str = 'float32') -> float | None:
  """The table's peak FLOP/s of one device of `device_kind` (longest match), or None."""
  matches = [k for k in PEAKS if k.lower() in device_kind.lower()]
  if not matches:
    return None
  bf16, fp32 = PEAKS[max(matches, key=len)]
  return bf16 if dtype == 'bfloat16' else fp32


@functools.lru_cache(maxsize=None)
def measured_cpu_peak(dtype: str = 'float32', size: int = 512, repeats: int = 10) -> float:
  """Best-of-`repeats` FLOP/s of a jitted [size x size] @ [size x size] matmul on this host's
  first CPU device; measured on first use and cached for the process. Every run's summary pays
  for it: at 512 it takes ~0.1 s (1024: 0.5-0.9 s, for the same peak within noise: 93 against
  86 GFLOP/s on the 2-core machine at load ~7)."""
  cpu = jax.devices('cpu')[0]
  a = jax.device_put(jnp.ones((size, size), jnp.dtype(dtype)), cpu)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    tic = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - tic)
  return 2 * size**3 / best


def peak_flops(devices: Sequence[Any], dtype: str = 'float32') -> float | None:
  """Peak FLOP/s of all of `devices` together (None for an accelerator not in the table)."""
  if devices[0].platform == 'cpu':
    return measured_cpu_peak(dtype)
  per_device = device_peak(devices[0].device_kind, dtype)
  return per_device * len(devices) if per_device else None


def _abstract(tree: Any) -> Any:
  """ShapeDtypeStructs (without shardings) for a tree of arrays, numbers or structs."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                      jax.eval_shape(lambda: tree))


def step_flops(step: Callable, state: Any, batch: Any) -> float | None:
  """FLOPs of `step(state, batch)` for the global batch, by XLA's cost analysis.

  `step` must need no collective axis (pass the step with axis_name=None); `state` and `batch`
  may be arrays or ShapeDtypeStructs. None when the backend offers no cost analysis.
  """
  return lowered_flops(jax.jit(step).lower(_abstract(state), _abstract(batch)))


def lowered_flops(lowered: Any) -> float | None:
  """XLA's FLOP count of a lowered (unpartitioned) program; None without cost analysis. A loop
  with a traced trip count (the resident path's `fori_loop` of steps) is counted once."""
  try:
    cost = lowered.cost_analysis()
  except Exception:  # pylint: disable=broad-except  (backends without cost analysis)
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = (cost or {}).get('flops')
  return float(flops) if flops and flops > 0 else None


def transformer_train_flops(num_params: int, embedding_params: int, batch: int, seq_len: int,
                            num_layers: int, hidden_size: int, vocab_size: int) -> float:
  """Training FLOPs of one step of a decoder/encoder Transformer, by formula.

  6·(N − embeddings)·B·T for the dense layers (2 forward + 4 backward per weight and token),
  6·V·d·B·T for the output projection (tied or not: an embedding lookup costs no FLOPs, so the
  table's parameters are counted here, as a matmul, instead), and 12·L·B·T²·d for attention's
  scores and weighted values (QKᵀ and AV: 2·2·T²·d per layer forward, twice that backward).
  """
  tokens = batch * seq_len
  dense = 6 * (num_params - embedding_params) * tokens
  output = 6 * vocab_size * hidden_size * tokens
  attention = 12 * num_layers * batch * seq_len**2 * hidden_size
  return float(dense + output + attention)


def mfu(flops_per_step: float | None, steps_per_second: float | None,
        peak: float | None) -> float | None:
  """Model FLOPs utilization in [0, 1] (None when any input is unknown)."""
  if not flops_per_step or not steps_per_second or not peak:
    return None
  return flops_per_step * steps_per_second / peak


def train_step_flops(step: Callable, state: Any, host_batch: dict, *,
                     axis_name: str | None = None, stacked: bool = False) -> float | None:
  """FLOPs of one training step on the global batch, from a placed state and a host batch.

  `axis_name`: the step reduces over this pmap axis (and the state has pmap's leading device
  axis); it is then analysed under a 1-member `vmap` of that name, where the collectives are
  identities. `stacked`: the host batch is a [k, batch, ...] stack of steps (one step's batch is
  analysed). The host batch is this process's share; the global batch is process_count times it.
  """
  lead = (1,) if axis_name else ()
  abstract_state = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(lead + (x.shape[1:] if axis_name else x.shape), x.dtype),
      _abstract(state))
  skip = 1 if stacked else 0

  def global_batch(x):
    shape = np.shape(x)[skip:]
    return jax.ShapeDtypeStruct(lead + (shape[0] * jax.process_count(),) + shape[1:], x.dtype)
  if axis_name:
    step = jax.vmap(step, axis_name=axis_name)
  return step_flops(step, abstract_state, jax.tree.map(global_batch, host_batch))


class Stopwatch:
  """Accumulates the wall time of the segments it is told to time (training steps only)."""

  def __init__(self):
    self.seconds, self._start = 0.0, None

  def start(self) -> None:
    self._start = time.perf_counter()

  def stop(self) -> None:
    if self._start is not None:
      self.seconds += time.perf_counter() - self._start
      self._start = None
