"""The sentences of the bundled `speech` dataset: spoken numbers, digit strings, commands.

Every sentence is lowercase words over `ALPHABET` separated by single spaces, exactly as it is
spoken (the synthesizer reads the words, never digits), so the transcript is the ground truth.
`sentences(split, count, seed)` draws distinct sentences of one split; a sentence belongs to
exactly one split, decided by a hash of its text (`split_of`), so the test split's sentences are
never seen in training.
"""
import zlib

import numpy as np

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"  # CTC labels 1..28; 0 is the blank.
KINDS = ('number', 'digits', 'command')
# Shares of the sentence space by hash: 10% test, 10% validation, 80% train.
_SPLIT_BUCKETS = {'test': range(0, 10), 'validation': range(10, 20), 'train': range(20, 100)}

_ONES = ('zero one two three four five six seven eight nine ten eleven twelve thirteen '
         'fourteen fifteen sixteen seventeen eighteen nineteen').split()
_TENS = 'twenty thirty forty fifty sixty seventy eighty ninety'.split()
_SWITCH = ('turn on', 'turn off', 'switch on', 'switch off', 'dim')
_ROOMS = ('kitchen', 'bedroom', 'living room', 'bathroom', 'garage', 'office', 'hallway', 'garden')
_DEVICES = ('lights', 'lamp', 'fan', 'heater', 'radio', 'television', 'speaker')
_SETTINGS = ('volume', 'temperature', 'timer', 'alarm', 'brightness', 'speed')
_MOVES = ('go', 'move', 'turn', 'look', 'step')
_DIRECTIONS = ('left', 'right', 'up', 'down', 'forward', 'back')
_MANNERS = ('', ' slowly', ' quickly', ' now', ' again', ' a little')
_MEDIA = ('play music', 'play the next song', "play yesterday's news", 'pause the music',
          'stop the music', 'skip this song', 'repeat that', 'read my messages',
          "what's the weather", 'what time is it', 'cancel that', "don't stop")
_OPEN = ('open', 'close', 'lock', 'unlock')
_THINGS = ('door', 'window', 'garage door', 'front gate', 'curtains', 'blinds')
_PEOPLE = ('mum', 'dad', 'anna', 'peter', 'the office', 'the doctor', 'grandma', 'my sister')


def number_words(n: int) -> str:
  """English words of 0 <= n < 1,000,000, British style: 342 -> 'three hundred and forty two'."""
  if n < 20:
    return _ONES[n]
  if n < 100:
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f' {_ONES[ones]}' if ones else '')
  if n < 1000:
    hundreds, rest = divmod(n, 100)
    return f'{_ONES[hundreds]} hundred' + (f' and {number_words(rest)}' if rest else '')
  thousands, rest = divmod(n, 1000)
  joiner = ' and ' if 0 < rest < 100 else ' '
  return f'{number_words(thousands)} thousand' + (joiner + number_words(rest) if rest else '')


def _draw(rng: np.random.Generator, kind: str) -> str:
  pick = lambda options: options[rng.integers(len(options))]  # pylint: disable=unnecessary-lambda-assignment
  if kind == 'number':
    digits = rng.integers(1, 5)  # Up to 9,999: at most about three seconds of speech.
    return number_words(int(rng.integers(0, 10 ** digits)))
  if kind == 'digits':
    return ' '.join(_ONES[d] for d in rng.integers(0, 10, rng.integers(3, 7)))
  form = rng.integers(6)
  if form == 0:
    return f'{pick(_SWITCH)} the {pick(_ROOMS)} {pick(_DEVICES)}'
  if form == 1:
    return f'set the {pick(_SETTINGS)} to {number_words(int(rng.integers(1, 100)))}'
  if form == 2:
    return f'{pick(_MOVES)} {pick(_DIRECTIONS)}{pick(_MANNERS)}'
  if form == 3:
    return pick(_MEDIA)
  if form == 4:
    return f'{pick(_OPEN)} the {pick(_THINGS)}'
  return f'call {pick(_PEOPLE)}'


def split_of(text: str) -> str:
  """The split a sentence belongs to, from a fixed hash of its text."""
  bucket = zlib.crc32(text.encode('utf-8')) % 100
  return next(split for split, buckets in _SPLIT_BUCKETS.items() if bucket in buckets)


def sentences(split: str, count: int, seed: int) -> list[str]:
  """`count` sentences of `split`, kinds in equal turns, distinct while the split has unused
  ones of a kind (commands are few: they repeat, in other voices), deterministic in `seed`."""
  rng = np.random.default_rng(seed)
  out, seen = [], set()
  for i in range(count):
    kind = KINDS[i % len(KINDS)]
    for attempt in range(10_000):
      text = _draw(rng, kind)
      if split_of(text) == split and (text not in seen or attempt >= 200):
        break
    else:
      raise RuntimeError(f'no {kind} sentence of split {split!r} found')
    seen.add(text)
    out.append(text)
  return out
