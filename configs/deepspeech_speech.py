"""DeepSpeech-style speech recognition with CTC on the bundled `speech` dataset (eSpeak NG).

Command:
  research train --config configs/deepspeech_speech.py --workdir workdirs/deepspeech_speech
  research transcribe --workdir workdirs/deepspeech_speech --audio FILE.wav

`speech`: English utterances synthesized offline with eSpeak NG (spoken numbers, digit strings,
short commands), 8 kHz, 3,600 train / 400 validation / 400 test; the test split's voice variants
and sentences are never seen in training (research/data/speech_builder.py). The model: log-mel
features (40 mels, 25 ms windows every 10 ms) normalized per utterance, SpecAugment in training
(2 frequency masks of up to 6 mels, 2 time masks of up to 8 frames), two 3x3 convolutions of 16
channels (stride 3 in time), two bidirectional GRU layers of 96, a character readout with the
CTC blank (research/models/deepspeech.py): 293k parameters. Adam 2e-3, 100 warmup steps, cosine
decay, gradient clipping at 5, batch 32, 1,200 steps (10.7 epochs).
Expected (measured, seed 0, greedy decoding, exact edit-distance sums): test CER 0.0257, WER
0.0820 (validation 0.0141 / 0.0570, train 0.0075 / 0.0304). Beam search (width 8) with the
training transcripts' character 5-gram LM, weights tuned on 200 validation utterances
(`research transcribe --workdir DIR --evaluate`, 98 s): test CER 0.0127, WER 0.0280.
Results and figures: experiments/results/speech/.
Runtime: 52.9 min wall on 2 CPU cores shared with four other people's jobs (load average 12-25
throughout; 0.41 steps/s); 646 s of user CPU time in all, so an unshared 2-core machine should
take well under 20 minutes (not measured here). Preparing the dataset: ~38 s of CPU.
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
  config.eval_batch_size = 400
  config.total_steps = 1200
  config.eval_every = 400
  config.early_stopping.metric = 'cer'
  return config
