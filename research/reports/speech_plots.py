"""The figure of a speech run's test utterances: features, CTC posteriors and transcripts.

Reads `DIR/speech/examples.npz`, which `research transcribe --evaluate` writes
(research/speech/evaluate.py): per utterance, the normalized log-mel features the model read and
its per-frame log posteriors, with the reference and the greedy / beam / beam+LM transcripts.
Each utterance is one row: the spectrogram (left) and the posteriors over the blank and the
characters (right; a frame's most likely label is its brightest cell, so the CTC alignment shows
as the path of bright cells between long stretches of blank).
"""
import pathlib

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position

EXAMPLES = 'examples.npz'


def figure(npz: pathlib.Path):
  """The figure of the examples in `npz` (see the module docstring)."""
  with np.load(npz) as data:
    arrays = {key: data[key] for key in data.files}
  alphabet = str(arrays['alphabet'])
  count = len(arrays['references'])
  fig, axes = plt.subplots(count, 2, figsize=(13, 2.6 * count), squeeze=False,
                           gridspec_kw={'width_ratios': [1, 1]})
  labels = ['∅'] + ['␣' if c == ' ' else c for c in alphabet]
  for i in range(count):
    spectrogram, posteriors = arrays[f'spectrogram_{i}'], arrays[f'posteriors_{i}']
    left, right = axes[i]
    left.imshow(spectrogram.T, origin='lower', aspect='auto', cmap='magma')
    left.set_ylabel('mel channel')
    left.set_xlabel('frame (10 ms)')
    right.imshow(np.exp(posteriors).T, origin='lower', aspect='auto', cmap='viridis',
                 vmin=0.0, vmax=1.0, interpolation='nearest')
    right.set_yticks(range(len(labels)))
    right.set_yticklabels(labels, fontsize=6)
    right.set_xlabel('output frame')
    lines = [f"reference: {arrays['references'][i]}"]
    for name in ('greedy', 'beam_lm'):
      key = f'hyp_{name}'
      if key in arrays:
        lines.append(f"{name.replace('_', '+')}: {arrays[key][i]}")
    left.set_title('\n'.join(lines), fontsize=8, loc='left')
    right.set_title('CTC posteriors (∅: blank)', fontsize=8, loc='left')
  fig.tight_layout()
  return fig
