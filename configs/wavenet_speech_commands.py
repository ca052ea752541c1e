"""WaveNet-style classifier on TFDS `speech_commands` (12 classes of 1-second spoken words).

Command (where speech_commands is prepared in data_dir):
  research train --config configs/wavenet_speech_commands.py --workdir workdirs/wavenet_sc

Audio is int16 at 16 kHz, scaled to [-1, 1) and padded or cut to 16,000 samples. A strided
input conv (downsample 16: 1 kHz frames), 2 blocks of 8 layers (dilations 1..128: a receptive
field of 8,192 samples, 0.5 s), 64 channels, mean pooling; AdamW 1e-3, warmup + cosine, batch 64,
10 epochs.
Expected: not measured here — TFDS needs a network to download speech_commands and TensorFlow
for its Audio feature, neither of which this machine has; the bundled `tones` set
(configs/wavenet_tones.py) exercises the same model offline.
Runtime: hours on 2 CPU cores (85,511 training clips); minutes on one GPU.
"""
import ml_collections

from research import config as config_lib


def get_config():
  config = config_lib.base()
  config.dataset.name = 'speech_commands'
  config.dataset.audio_length = 16000
  config.model = ml_collections.ConfigDict(dict(
      name='wavenet', channels=64, skip_channels=64, kernel_size=2, num_blocks=2,
      layers_per_block=8, pool='mean', downsample=16, dropout_rate=0.1))
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 1e-4
  config.optimizer.schedule = 'warmup_cosine'
  config.optimizer.warmup_steps = 500
  config.batch_size = 64
  config.num_epochs = 10
  return config
