"""A DeepSpeech-style speech recognizer (Amodei et al. 2016, "Deep Speech 2"), for CTC.

    waveform [B, samples] --STFT, mel filterbank, log--> log-mel [B, frames, num_mels]
      (or MFCCs), normalized per utterance over its real frames, SpecAugment masks in training
    --2 convolutions (3x3, ReLU; the first strided by `time_stride` in time, both by 2 in
      frequency)--> [B, frames / time_stride, ·] --Dense(hidden_size) + LayerNorm-->
    --`num_layers` bidirectional GRU layers (flax's GRUCell, as research/models/gru.py),
      reading each utterance to its real end in both directions-->
    --Dense(1 + alphabet)--> per-frame logits over the CTC blank (0) and the characters.

Inputs are {'audio': float32 [B, samples], 'length': int32 [B]} (`research/core/ctc.py`), or a
bare waveform [B, samples] taken as all real (initialization, transcribing one file). Returns
{'logits': float32 [B, T, 1 + alphabet], 'paddings': float32 [B, T]} with paddings 1.0 on
output frames past an utterance's end. Frames: `window_ms` windows every `hop_ms` at the
dataset's sample rate (research/core/audio_features.py).
"""
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.core import audio_features
from research.errors import UserError, unknown
from research.models import checks
from research.models.context import Context

FEATURES = ('logmel', 'mfcc')


class Model(nn.Module):
  num_outputs: int
  sample_rate: int
  features: str = 'logmel'
  num_mels: int = 40
  num_mfcc: int = 13
  window_ms: float = 25.0
  hop_ms: float = 10.0
  conv_channels: int = 32
  time_stride: int = 2
  hidden_size: int = 128
  num_layers: int = 2
  dropout_rate: float = 0.0
  freq_masks: int = 0
  freq_mask_width: int = 8
  time_masks: int = 0
  time_mask_width: int = 10
  dtype: Any = jnp.float32

  @property
  def window(self) -> int:
    return int(round(self.window_ms * self.sample_rate / 1000))

  @property
  def hop(self) -> int:
    return int(round(self.hop_ms * self.sample_rate / 1000))

  def spectrogram(self, audio: jnp.ndarray, length: jnp.ndarray
                  ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(normalized features [B, frames, channels], real frames [B]) of a padded batch."""
    fft_size = 1 << (self.window - 1).bit_length()
    x = audio_features.log_mel(audio.astype(jnp.float32), self.sample_rate, self.window,
                               self.hop, fft_size, self.num_mels)
    if self.features == 'mfcc':
      x = audio_features.mfcc(x, self.num_mfcc)
    frames = jnp.minimum(audio_features.num_frames(length, self.window, self.hop), x.shape[1])
    return audio_features.normalize(x, frames), frames

  @nn.compact
  def __call__(self, inputs, train: bool = False) -> dict:
    if isinstance(inputs, dict):
      audio, length = inputs['audio'], inputs['length']
    else:
      audio = inputs
      length = jnp.full(audio.shape[:1], audio.shape[1], jnp.int32)
    x, frames = self.spectrogram(audio, length)
    if train and (self.freq_masks or self.time_masks):
      x = audio_features.spec_augment(
          self.make_rng('dropout'), x, frames, freq_masks=self.freq_masks,
          freq_width=self.freq_mask_width, time_masks=self.time_masks,
          time_width=self.time_mask_width)
    x = x[..., None].astype(self.dtype)  # [B, frames, channels, 1]
    for i, stride in enumerate(((self.time_stride, 2), (1, 2))):
      x = nn.relu(nn.Conv(self.conv_channels, (3, 3), strides=stride, padding='SAME',
                          dtype=self.dtype, param_dtype=jnp.float32, name=f'conv{i}')(x))
    x = x.reshape((*x.shape[:2], -1))
    x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name='norm')(
        nn.Dense(self.hidden_size, dtype=self.dtype, param_dtype=jnp.float32, name='project')(x))
    steps = -(-frames // self.time_stride)  # Output frames of each utterance: ceil.
    for depth in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      cells = [nn.RNN(nn.GRUCell(self.hidden_size, dtype=self.dtype, param_dtype=jnp.float32,
                                 name=f'layer{depth}_{direction}'))
               for direction in ('forward', 'backward')]
      x = nn.Bidirectional(*cells)(x, seq_lengths=steps)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    logits = nn.Dense(self.num_outputs, dtype=self.dtype, param_dtype=jnp.float32,
                      name='readout')(x)
    paddings = (jnp.arange(x.shape[1])[None, :] >= steps[:, None]).astype(jnp.float32)
    return {'logits': logits.astype(jnp.float32), 'paddings': paddings}


def validate(cfg: ml_collections.ConfigDict) -> None:
  if cfg.features not in FEATURES:
    raise unknown('config.model.features', cfg.features, FEATURES)
  for field in ('num_mels', 'num_mfcc', 'conv_channels', 'time_stride', 'hidden_size',
                'num_layers', 'freq_mask_width', 'time_mask_width'):
    checks.positive_int(field, cfg[field])
  for field in ('freq_masks', 'time_masks'):
    checks.positive_int(field, cfg[field], minimum=0)
  if cfg.features == 'mfcc' and cfg.num_mfcc > cfg.num_mels:
    raise UserError(f'config.model.num_mfcc={cfg.num_mfcc} must be at most num_mels='
                    f'{cfg.num_mels}')
  for field in ('window_ms', 'hop_ms'):
    if isinstance(cfg[field], bool) or not isinstance(cfg[field], (int, float)) or (
        cfg[field] <= 0):
      raise UserError(f'config.model.{field} must be a positive number, got {cfg[field]!r}')
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  if not ctx.sample_rate:
    raise UserError("model 'deepspeech' reads speech: use it with a speech dataset (speech, "
                    "librispeech) and task='ctc'")
  fields = ('features', 'num_mels', 'num_mfcc', 'window_ms', 'hop_ms', 'conv_channels',
            'time_stride', 'hidden_size', 'num_layers', 'dropout_rate', 'freq_masks',
            'freq_mask_width', 'time_masks', 'time_mask_width')
  return Model(num_outputs=ctx.num_outputs, sample_rate=int(ctx.sample_rate),
               dtype=ctx.dtype, **{field: cfg[field] for field in fields})
