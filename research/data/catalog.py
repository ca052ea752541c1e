"""Which datasets exist, how each is prepared, split and turned into model input.

`prepare(dataset_cfg)` is the one entry point: it resolves `dataset_cfg.name` to a TFDS builder,
makes sure the data is prepared in `data_dir` in the array_record format (the only one TFDS reads
without TensorFlow), chooses the train/validation/test splits, and returns a `DatasetInfo`.

- Bundled names (`BUNDLED`) are prepared on first use from data that needs no network.
- Any other registered TFDS name must already be prepared in `data_dir` (or be downloadable from
  here); otherwise a `UserError` says how to prepare it elsewhere. How a name becomes a prepared
  builder is `preparation`'s concern.

How examples become model input (images, 1-D signals, audio, tokens, text) is `encoding`'s
concern; where they are read from (records, or windows cut from a text) is `sources`'.
"""
import dataclasses
import math
import numbers
from typing import Any

from research import errors
from research.data import encoding as encoding_lib, preparation, series, sources, subsets

BUNDLED = preparation.BUNDLED  # Names prepared here on first use.
DEFAULT_VALIDATION_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a training run needs to know about its dataset, after splitting.

  Attributes:
    name: the dataset name as configured, e.g. 'digits', 'mnist', 'mnist1d/shuffled'.
    num_classes: number of label classes; None for a dataset without labels (text for language
      models, e.g. 'addition/lm'), whose batches then have no 'label'.
    input_shape: shape of one example's 'input' after preprocessing, e.g. (8, 8, 1), (40,) or
      (seq_len,) for tokens.
    split_sizes: {'train': n, 'validation': n, 'test': n}, after carving validation from train.
    splits: the TFDS split strings used, e.g. {'train': 'train[:3600]', 'validation':
      'train[3600:]', 'test': 'test'}. For text cut into windows (tiny_shakespeare), slices
      count windows, not records.
    input_dtype: dtype of the batches' 'input': 'float32', or 'int32' for tokens.
    vocab_size: number of token values for token datasets (256: bytes), else None.
    target_shape: one example's real-valued target shape (regression; () for a scalar, (horizon,)
      for a series' windows), else None.
    target_scale: (mean, std) of the TRAIN split's target values, fitted here and recorded with
      the run (dataset.json): the regression task standardizes targets with it. None without one.
    alphabet, sample_rate: a speech dataset's transcript characters (CTC labels 1..n) and audio
      rate in Hz (research/data/speech_encoding.py); None for other datasets.
  """
  name: str
  num_classes: int | None
  input_shape: tuple
  split_sizes: dict
  splits: dict
  input_dtype: str = 'float32'
  vocab_size: int | None = None
  target_shape: tuple | None = None
  target_scale: tuple | None = None
  alphabet: str | None = None
  sample_rate: int | None = None


# How each dataset's raw examples become model input (rules by TFDS builder name).
Preprocessing = encoding_lib.Preprocessing
PREPROCESSING = encoding_lib.PREPROCESSING


@dataclasses.dataclass(frozen=True)
class Prepared:
  """A prepared dataset: its `DatasetInfo`, the TFDS builder to read it, the preprocessing.

  `windows` holds, for text cut into windows only, each TFDS split's windows (uint8 [n, L]).
  """
  info: DatasetInfo
  builder: Any  # tfds.core.DatasetBuilder
  encoding: encoding_lib.Encoding
  windows: dict = dataclasses.field(default_factory=dict)

  def source(self, split: str) -> sources.RecordSource | sources.WindowSource:
    """The source of role `split` ('train', 'validation' or 'test')."""
    return sources.open_split(self.builder, self.encoding, self.info.splits[split], self.windows,
                              preparation.rebuild_hint(self.info.name, self.builder.data_dir))


def prepare(dataset_cfg) -> DatasetInfo:
  """Prepares the configured dataset in its data_dir if needed; returns its `DatasetInfo`.

  Args:
    dataset_cfg: a ConfigDict (or anything with these attributes): `name`, `data_dir` (None for
      `$TFDS_DATA_DIR` or `~/tensorflow_datasets`), `manual_dir` (for `mnist_idx`; '' otherwise)
      and `validation_fraction` (in (0, 1); used only when the dataset has no validation split).

  A prepared copy is checked first (`integrity`): its metadata, and every split's files and
  record counts (every record, for datasets up to `integrity.FULL_CHECK_BYTES`), so that damage
  stops the run here, naming the directory, rather than after training.

  Raises:
    UserError: unknown name, unusable data_dir, dataset not prepared and not preparable here, a
      damaged prepared copy, a bad validation fraction, or a dataset whose features this
      pipeline cannot use.
  """
  return load(dataset_cfg, verify=True).info


def load(dataset_cfg, verify: bool = False) -> Prepared:
  """Like `prepare`, but also returns the builder and preprocessing that the pipeline needs.

  `verify`: check the prepared files as `prepare` does. A run loads its dataset once, into the
  handle that its iterators and evaluators share (research/data/dataset.py)."""
  name = str(getattr(dataset_cfg, 'name', '') or '').strip()
  fraction = _validation_fraction(dataset_cfg)
  data_dir = preparation.data_dir(dataset_cfg)
  builder = preparation.prepared_builder(
      name, data_dir, str(getattr(dataset_cfg, 'manual_dir', '') or ''),
      bool(getattr(dataset_cfg, 'download', False)))
  if verify:
    preparation.verify(name, builder)
  encoding = encoding_lib.resolve(name, builder, dataset_cfg)
  windows, scale = {}, None
  available = {k: int(v.num_examples) for k, v in builder.info.splits.items()}
  if encoding.kind == 'windows':
    windows = {split: sources.text_windows(name, builder, split, encoding.feature,
                                           encoding.input_shape[0])
               for split in ('train', 'validation', 'test') if split in available}
    available = {k: len(v) for k, v in windows.items()}
  elif encoding.kind == 'series':  # Windows cut inside each stretch of time.
    windows, scale = series.windows(name, builder, encoding, dataset_cfg)
    available = {k: len(v['input']) for k, v in windows.items()}
  splits, split_sizes = subsets.first_share(*_choose_splits(name, available, fraction),
                                           getattr(dataset_cfg, 'train_fraction', 1.0))
  if encoding.has_target and encoding.kind != 'series':
    scale = series.fit_scale(sources.open_split(builder, encoding, splits['train'], windows).read(
        range(split_sizes['train']))['target'])
  info = DatasetInfo(
      name=name,
      num_classes=(int(builder.info.features['label'].num_classes) if encoding.has_label
                   else None),
      input_shape=encoding.input_shape,
      split_sizes=split_sizes,
      splits=splits,
      input_dtype=encoding.input_dtype,
      vocab_size=encoding.vocab_size,
      target_shape=encoding.target_shape,
      target_scale=scale,
      alphabet=encoding.speech.alphabet if encoding.speech else None,
      sample_rate=encoding.speech.sample_rate if encoding.speech else None,
  )
  return Prepared(info=info, builder=builder, encoding=encoding, windows=windows)


def _validation_fraction(dataset_cfg) -> float:
  fraction = getattr(dataset_cfg, 'validation_fraction', DEFAULT_VALIDATION_FRACTION)
  if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (
      0.0 < fraction < 1.0):
    raise errors.UserError(f'dataset.validation_fraction must be a number in (0, 1), got '
                           f'{fraction!r}')
  return float(fraction)


def _choose_splits(name: str, available: dict, fraction: float) -> tuple[dict, dict]:
  """Returns ({role: TFDS split string}, {role: number of examples}) from {split: examples}."""
  missing = [s for s in ('train', 'test') if s not in available]
  if missing:
    raise errors.UserError(f'dataset {name!r} has splits {sorted(available)}; this pipeline '
                           f'needs train and test (missing: {", ".join(missing)})')
  if 'validation' in available:
    splits = {'train': 'train', 'validation': 'validation', 'test': 'test'}
    return splits, {k: available[k] for k in splits}
  # Carve validation from the end of train with absolute counts: exact sizes, no rounding
  # surprises from TFDS's percent slicing, and the same examples on every run.
  num_train = available['train']
  num_validation = max(1, int(math.floor(num_train * fraction + 0.5)))
  if num_validation >= num_train:
    raise errors.UserError(f'dataset.validation_fraction={fraction} leaves no training examples '
                           f'of the {num_train} in {name!r}')
  cut = num_train - num_validation
  splits = {'train': f'train[:{cut}]', 'validation': f'train[{cut}:]', 'test': 'test'}
  return splits, {'train': cut, 'validation': num_validation, 'test': available['test']}

