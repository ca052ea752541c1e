"""Using a trained speech recognizer (task 'ctc'): transcribing WAV files, and measuring greedy
against beam-search decoding with a character language model on a whole split."""
