"""Reading a WAV file for transcription (standard-library `wave`), with one clear error line for
anything that is not usable audio."""
import os
import wave

import numpy as np

from research.errors import UserError

_SCALES = {1: 128.0, 2: 32768.0, 4: 2147483648.0}  # PCM sample width in bytes -> full scale.


def read(path: str, sample_rate: int) -> np.ndarray:
  """float32 [samples] in [-1, 1) of the PCM WAV file `path` (channels averaged).

  Raises UserError: a missing or empty file, not a PCM WAV file, no samples, or a sample rate
  other than `sample_rate` (the model's: this refuses rather than resamples)."""
  if not os.path.isfile(path):
    raise UserError(f'--audio {path!r} is not a file')
  if os.path.getsize(path) == 0:
    raise UserError(f'--audio {path!r} is empty; expected a 16-bit PCM WAV file')
  try:
    with wave.open(path, 'rb') as f:
      channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
      frames = f.readframes(f.getnframes())
  except (wave.Error, EOFError) as e:
    raise UserError(f'--audio {path!r} is not a PCM WAV file ({e or "truncated"})') from None
  if width not in _SCALES:
    raise UserError(f'--audio {path!r} has {8 * width}-bit samples; expected 8, 16 or 32-bit '
                    'PCM')
  if rate != sample_rate:
    raise UserError(f'--audio {path!r} is sampled at {rate} Hz; this model was trained on '
                    f'{sample_rate} Hz audio: resample it to {sample_rate} Hz first')
  dtype = {1: np.uint8, 2: '<i2', 4: '<i4'}[width]
  samples = np.frombuffer(frames[:len(frames) - len(frames) % (width * channels)], dtype)
  if samples.size == 0:
    raise UserError(f'--audio {path!r} holds no audio samples')
  audio = samples.astype(np.float64)
  if width == 1:
    audio -= 128.0  # 8-bit WAV is unsigned.
  audio = audio.reshape(-1, channels).mean(axis=1) / _SCALES[width]
  return audio.astype(np.float32)
