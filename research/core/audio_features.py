"""Speech features in JAX: STFT power spectra, a mel filterbank, log-mel spectrograms, MFCCs,
per-utterance normalization and SpecAugment masks. All work on padded batches with lengths.

Frames: a `window`-sample Hann window every `hop` samples, without centering, so frame t covers
samples [t·hop, t·hop + window); an utterance of n samples has `num_frames(n)` = 1 + (n −
window) // hop frames (at least 1), and frames past that are padding.

Mel filterbank (`mel_filterbank`): `num_mels` triangles equally spaced on the HTK mel scale
(mel = 2595 · log10(1 + f / 700)) from 20 Hz to the Nyquist frequency, each peaking at 1 on
the FFT bin nearest its centre (no area normalization).
"""
import jax
import jax.numpy as jnp
import numpy as np

LOG_FLOOR = 1e-6  # Added to mel energies before the log.
MIN_HZ = 20.0


def hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_mels: int, fft_size: int, sample_rate: int) -> np.ndarray:
  """float32 [fft_size // 2 + 1, num_mels]: power spectrum bins -> mel energies."""
  bins = np.linspace(0.0, sample_rate / 2, fft_size // 2 + 1)
  edges = mel_to_hz(np.linspace(hz_to_mel(MIN_HZ), hz_to_mel(sample_rate / 2), num_mels + 2))
  low, centre, high = edges[:-2], edges[1:-1], edges[2:]
  rising = (bins[:, None] - low) / (centre - low)
  falling = (high - bins[:, None]) / (high - centre)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  # Narrow low triangles may fall between bins: the bin nearest each centre carries its peak.
  nearest = np.abs(bins[:, None] - centre).argmin(0)
  weights[nearest, np.arange(num_mels)] = 1.0
  return weights.astype(np.float32)


def dct_matrix(num_mels: int, num_coefficients: int) -> np.ndarray:
  """float32 [num_mels, num_coefficients]: the orthonormal DCT-II (MFCCs of log-mel energies)."""
  n = np.arange(num_mels)[:, None]
  k = np.arange(num_coefficients)[None, :]
  basis = np.cos(np.pi / num_mels * (n + 0.5) * k) * np.sqrt(2.0 / num_mels)
  basis[:, 0] /= np.sqrt(2.0)
  return basis.astype(np.float32)


def num_frames(num_samples, window: int, hop: int):
  """Frames of an utterance of `num_samples` (int or int array): 1 + (n − window) // hop, >= 1."""
  return jnp.maximum(1, 1 + (num_samples - window) // hop)


def power_spectrum(audio: jnp.ndarray, window: int, hop: int, fft_size: int) -> jnp.ndarray:
  """float32 [B, frames, fft_size // 2 + 1] |STFT|² of audio [B, samples] (Hann window)."""
  frames = 1 + (audio.shape[-1] - window) // hop
  index = np.arange(frames)[:, None] * hop + np.arange(window)[None, :]
  hann = np.hanning(window + 2)[1:-1].astype(np.float32)  # Nonzero at both ends.
  spectrum = jnp.fft.rfft(audio[..., index] * hann, n=fft_size)
  return jnp.square(jnp.abs(spectrum)).astype(jnp.float32)


def log_mel(audio: jnp.ndarray, sample_rate: int, window: int, hop: int, fft_size: int,
            num_mels: int) -> jnp.ndarray:
  """float32 [B, frames, num_mels] log mel energies of audio [B, samples]."""
  power = power_spectrum(audio, window, hop, fft_size)
  return jnp.log(power @ mel_filterbank(num_mels, fft_size, sample_rate) + LOG_FLOOR)


def mfcc(log_mels: jnp.ndarray, num_coefficients: int) -> jnp.ndarray:
  """[B, frames, num_coefficients] MFCCs of log-mel energies [B, frames, num_mels]."""
  return log_mels @ dct_matrix(log_mels.shape[-1], num_coefficients)


def normalize(features: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
  """Per utterance and channel: zero mean, unit variance over its real frames; padding -> 0."""
  valid = (jnp.arange(features.shape[1])[None, :] < lengths[:, None])[..., None]
  count = jnp.maximum(lengths, 1)[:, None, None].astype(jnp.float32)
  mean = jnp.where(valid, features, 0.0).sum(1, keepdims=True) / count
  variance = jnp.where(valid, jnp.square(features - mean), 0.0).sum(1, keepdims=True) / count
  return jnp.where(valid, (features - mean) * jax.lax.rsqrt(variance + 1e-5), 0.0)


def spec_augment(rng: jax.Array, features: jnp.ndarray, lengths: jnp.ndarray, *,
                 freq_masks: int, freq_width: int, time_masks: int, time_width: int
                 ) -> jnp.ndarray:
  """SpecAugment (Park et al. 2019) without time warping: `freq_masks` bands of up to
  `freq_width` channels and `time_masks` stretches of up to `time_width` real frames per
  utterance set to 0 (the normalized mean). features: [B, frames, channels]."""
  batch, frames, channels = features.shape
  keep = jnp.ones(features.shape, bool)
  keys = jax.random.split(rng, 2 * (freq_masks + time_masks) + 1)
  for i in range(freq_masks + time_masks):
    is_freq = i < freq_masks
    size, width = (channels, freq_width) if is_freq else (frames, time_width)
    extent = jnp.full((batch,), size) if is_freq else lengths
    w = jax.random.randint(keys[2 * i], (batch,), 0, width + 1)
    start = (jax.random.uniform(keys[2 * i + 1], (batch,)) *
             jnp.maximum(extent - w + 1, 1)).astype(jnp.int32)
    position = jnp.arange(size)[None, :]
    hit = (position >= start[:, None]) & (position < (start + w)[:, None])  # [B, size]
    keep &= ~(hit[:, None, :] if is_freq else hit[:, :, None])
  return jnp.where(keep, features, 0.0)
