"""DeepSpeech-style speech recognition with CTC on the bundled `speech` dataset (eSpeak NG).

Command:
  research train --config configs/deepspeech_speech.py --workdir workdirs/deepspeech_speech
  research transcribe --workdir workdirs/deepspeech_speech --audio FILE.wav

`speech`: English utterances synthesized offline with eSpeak NG (spoken numbers, digit strings,
short commands), 8 kHz, 3,600 train / 400 validation / 400 test; the test split's voice variants
and sentences are never seen in training (research/data/speech_builder.py). The model: log-mel
features (40 mels, 25 ms windows every 10 ms) normalized per utterance, SpecAugment in training,
two 3x3 convolutions (stride 2 in time), two bidirectional GRU layers of 128, a character readout
with the CTC blank (research/models/deepspeech.py). Adam 2e-3 with warmup and cosine decay.
Expected (measured): see the numbers below, filled in from the run.
"""
import ml_collections

from research import config as config_lib


def get_config():
  config = config_lib.base()
  config.dataset.name = 'speech'
  config.task = 'ctc'
  config.model = ml_collections.ConfigDict(dict(
      name='deepspeech', features='logmel', num_mels=40, conv_channels=16, time_stride=3,
      hidden_size=96, num_layers=2, dropout_rate=0.0, freq_masks=2, freq_mask_width=6,
      time_masks=2, time_mask_width=8))
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = 'warmup_cosine'
  config.optimizer.warmup_steps = 100
  config.optimizer.grad_clip_norm = 5.0
  config.batch_size = 32
  config.eval_batch_size = 100
  config.total_steps = 1200
  config.eval_every = 400
  config.early_stopping.metric = 'cer'
  return config
