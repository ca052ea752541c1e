"""eSpeak NG speech synthesis through its C API (ctypes), from the `espeakng-loader` package.

`espeakng-loader` ships the eSpeak NG shared library and its voice data, so synthesis needs no
system install and no network. The library is driven in synchronous mode: `espeak_Synth` returns
once the whole text is spoken, and the samples (22,050 Hz, int16, mono) arrive through the
synthesis callback, which appends them to a buffer here.

    with Synthesizer() as synth:
      audio = synth.speak('three hundred and forty two', voice='en-us+f3', rate=160, pitch=55)

The library holds global state (one voice, one set of parameters, and synthesis state that
carries from one utterance to the next) and draws noise from the C library's `rand()`. `speak`
seeds `rand()` with its `seed`, and every `Synthesizer` loads its own copy of the shared library
(copied to a temporary file: a new path gets new global state), so that a sequence of utterances
starts from the same state. Measured: a split still does not repeat bit-exactly, within or
across processes: eSpeak NG's waveforms differ by a sample or two in length now and then (a
source of variation not found in the time this was written). Texts, voices and every
drawn parameter are exactly reproducible. One `Synthesizer` at a time: copies share `rand()`.
"""
import ctypes
import shutil
import tempfile

import numpy as np

SAMPLE_RATE = 22_050  # What eSpeak NG synthesizes; `Synthesizer` checks the library agrees.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAMETERS = {'rate': 1, 'volume': 2, 'pitch': 3, 'range': 4}  # espeak_PARAMETER values.
_CHARS_UTF8 = 1
_END_PAUSE = 0x1000
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class Synthesizer:
  """One initialized eSpeak NG library; `speak` returns int16 samples at SAMPLE_RATE."""

  def __init__(self):
    import espeakng_loader  # pylint: disable=g-import-not-at-top
    self._copy = tempfile.NamedTemporaryFile(suffix='.so')  # pylint: disable=consider-using-with
    with open(espeakng_loader.get_library_path(), 'rb') as original:
      shutil.copyfileobj(original, self._copy)
    self._copy.flush()
    self._lib = ctypes.CDLL(self._copy.name)
    self._lib.espeak_Initialize.restype = ctypes.c_int
    self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                            ctypes.c_int]
    self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    self._lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                       ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
                                       ctypes.c_void_p]
    # The directory that holds `espeak-ng-data`.
    home = espeakng_loader.get_data_path().rsplit('/espeak-ng-data', 1)[0]
    rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, home.encode(), 0)
    if rate != SAMPLE_RATE:
      raise RuntimeError(f'eSpeak NG did not initialize (returned {rate}, expected '
                         f'{SAMPLE_RATE} Hz) from {home}')
    self._chunks: list[np.ndarray] = []

    def on_samples(wav, count, unused_events):
      if wav and count > 0:
        self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
      return 0  # Continue synthesis.

    self._libc = ctypes.CDLL(None)  # The process's C library, whose rand() eSpeak NG uses.
    self._callback = _CALLBACK(on_samples)  # Kept referenced while the library may call it.
    self._lib.espeak_SetSynthCallback(self._callback)

  def speak(self, text: str, voice: str, rate: int = 175, pitch: int = 50,
            pitch_range: int = 50, seed: int = 0) -> np.ndarray:
    """int16 [samples] of `text` in `voice` (e.g. 'en-us', 'en+m3'), `rate` words per minute,
    `pitch` and `pitch_range` 0..100; `seed` seeds the noise eSpeak NG draws."""
    if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
      raise ValueError(f'eSpeak NG has no voice {voice!r}')
    for name, value in (('rate', rate), ('pitch', pitch), ('range', pitch_range)):
      self._lib.espeak_SetParameter(_PARAMETERS[name], int(value), 0)
    self._chunks = []
    data = text.encode('utf-8') + b'\0'
    self._libc.srand(ctypes.c_uint(seed % 2**32))  # After the voice: loading one may reseed.
    status = self._lib.espeak_Synth(data, len(data), 0, 1, 0, _CHARS_UTF8 | _END_PAUSE, None, None)
    if status != 0:
      raise RuntimeError(f'eSpeak NG failed to synthesize {text!r} (status {status})')
    self._lib.espeak_Synchronize()
    return np.concatenate(self._chunks) if self._chunks else np.zeros((0,), np.int16)

  def close(self) -> None:
    self._lib.espeak_Terminate()
    self._copy.close()

  def __enter__(self) -> 'Synthesizer':
    return self

  def __exit__(self, *unused) -> None:
    self.close()
