"""Which datasets exist, how each is prepared, split and turned into model input.

`prepare(dataset_cfg)` is the one entry point: it resolves `dataset_cfg.name` to a TFDS builder,
makes sure the data is prepared in `data_dir` in the array_record format (the only one TFDS reads
without TensorFlow), chooses the train/validation/test splits, and returns a `DatasetInfo`.

- Bundled names (`BUNDLED`) are prepared on first use from data that needs no network.
- Any other registered TFDS name must already be prepared in `data_dir` (or be downloadable from
  here); otherwise a `UserError` says how to prepare it elsewhere.

How examples become model input (images, 1-D signals, audio, tokens, text) is `encoding`'s
concern; where they are read from (records, or windows cut from a text) is `sources`'.
"""
import dataclasses
import math
import numbers
import os
import re
from typing import Any

import tensorflow_datasets as tfds

from research import errors
from research.data import build_lock, encoding as encoding_lib, idx, integrity, mnist_idx_builder
from research.data import series, series_builders, sources, subsets

# Names that are prepared here on first use (importing `research.data` registers the builders).
BUNDLED = ('digits', 'mnist1d', 'mnist1d/original', 'mnist1d/shuffled', 'mnist_idx', 'addition',
           'addition/lm', 'addition/check', 'tones', 'speech', 'diabetes', 'sunspots',
           *(f'stocks/{ticker}' for ticker in series_builders.TICKERS))
FILE_FORMAT = 'array_record'
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
                              _rebuild_hint(self.info.name, self.builder.data_dir))


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
  data_dir = _data_dir(dataset_cfg)
  builder = _prepared_builder(name, data_dir, str(getattr(dataset_cfg, 'manual_dir', '') or ''),
                              bool(getattr(dataset_cfg, 'download', False)))
  if verify:
    _verify(name, builder)
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


def _data_dir(dataset_cfg) -> str:
  """Returns the data_dir to use, created if missing; UserError if it cannot be."""
  data_dir = getattr(dataset_cfg, 'data_dir', None)
  if not data_dir:
    data_dir = os.environ.get('TFDS_DATA_DIR') or os.path.join('~', 'tensorflow_datasets')
  data_dir = os.path.abspath(os.path.expanduser(str(data_dir)))
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise errors.UserError(f'dataset.data_dir {data_dir!r} exists but is not a directory')
  try:
    os.makedirs(data_dir, exist_ok=True)
  except OSError as e:
    raise errors.UserError(f'dataset.data_dir {data_dir!r} cannot be created: {e.strerror}') from e
  return data_dir


def _rebuild_hint(name: str, directory) -> str:
  return integrity.rebuild_hint(name, directory, name in BUNDLED)


def _verify(name: str, builder) -> None:
  """UserError naming the directory when the prepared copy of `name` is damaged."""
  problem = integrity.metadata_problem(builder.data_dir) or integrity.files_problem(builder)
  if problem:
    raise integrity.damaged(name, builder.data_dir, problem, _rebuild_hint(name, builder.data_dir))


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0] if lines else ""}'


def _unknown_dataset(name: str) -> errors.UserError:
  """Like `errors.unknown`, listing the bundled names, with the closest bundled or TFDS name."""
  names = [*BUNDLED, *tfds.list_builders(with_community_datasets=False)]
  return errors.UserError(f'unknown dataset {name!r}{errors.closest(name, names)}; allowed: '
                          f'{", ".join(BUNDLED)}, or any TFDS dataset name prepared in data_dir '
                          '(see tfds.list_builders())')


def _builder(name: str, data_dir: str):
  """Returns the TFDS builder for `name` reading from `data_dir`."""
  base = re.split(r'[/:]', name, maxsplit=1)[0]
  if not name or not base:
    raise errors.UserError(f'dataset.name must name a dataset; allowed: {", ".join(BUNDLED)}, '
                           'or any TFDS dataset name')
  if base in {b.split('/')[0] for b in BUNDLED} and name not in BUNDLED:
    raise errors.unknown('dataset', name, BUNDLED)
  try:
    tfds.builder_cls(base)
  except tfds.core.registered.DatasetNotFoundError:
    raise _unknown_dataset(name) from None
  except ValueError as e:  # A name that TFDS cannot even parse.
    raise errors.UserError(f'bad dataset name {name!r}: {_first_line(e)}') from e
  try:
    return tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    # A prepared copy whose metadata TFDS cannot read (a ParseError, a version AssertionError).
    found = integrity.find_metadata_problem(data_dir, name)
    if found:
      directory, problem = found
      raise integrity.damaged(name, directory, problem, _rebuild_hint(name, directory)) from e
    if isinstance(e, (ValueError, AssertionError)):  # Unknown config or version.
      raise errors.UserError(f'bad dataset name {name!r}: {_first_line(e)}') from e
    if isinstance(e, ModuleNotFoundError):  # E.g. tfds.features.Audio (speech_commands): TF.
      raise errors.UserError(f'dataset {name!r} needs a package that is not installed to read '
                             f'its features ({_first_line(e)}); install it, e.g. `pip install '
                             'tensorflow`') from e
    raise


def _prepared_builder(name: str, data_dir: str, manual_dir: str, download: bool):
  """Returns the builder of `name` after making sure it is prepared in `data_dir`."""
  builder = _builder(name, data_dir)
  if builder.name == 'mnist_idx' and download and not manual_dir:  # The official MNIST files.
    manual_dir = mnist_idx_builder.official_manual_dir(builder, data_dir)
  if builder.is_prepared():
    if builder.name == 'mnist_idx' and manual_dir:
      _check_mnist_idx_source(builder, manual_dir)
    _check_file_format(name, builder, data_dir)
    return builder
  bundled = name in BUNDLED
  how_to_prepare = (
      f'prepare it on a machine with network and TensorFlow: `tfds build {name} --data_dir DIR '
      f'--file_format {FILE_FORMAT}`, then copy DIR/{builder.name} into {data_dir}')
  if not bundled and not download:
    raise errors.UserError(
        f'dataset {name!r} is not prepared in data_dir {data_dir!r}; {how_to_prepare} (or set '
        '--config.dataset.download=True to let TFDS download it here)')
  if builder.name == 'mnist_idx':
    manual_dir = manual_dir or os.path.join(data_dir, 'downloads', 'manual')  # TFDS's default.
    idx.find_pairs(manual_dir)  # A clear error before TFDS starts, if the files are missing.
  # Any dataset may need manual_dir (e.g. TFDS's imagenet2012); TFDS ignores it otherwise.
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
  with build_lock.held(data_dir, name):
    if _builder(name, data_dir).is_prepared():  # Another process prepared it while we waited.
      return _builder(name, data_dir)
    try:
      builder.download_and_prepare(file_format=FILE_FORMAT, download_config=download_config)
    except errors.UserError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      if bundled:
        raise
      raise errors.UserError(
          f'dataset {name!r} is not prepared in data_dir {data_dir!r} and could not be '
          f'downloaded here ({_first_line(e)}); {how_to_prepare}') from e
  return _builder(name, data_dir)


def _check_file_format(name: str, builder, data_dir: str) -> None:
  formats = [builder.info.file_format, *builder.info.alternative_file_formats]
  if not any(f is not None and f.value == FILE_FORMAT for f in formats):
    found = ', '.join(str(f.value) for f in formats if f is not None) or 'unknown'
    raise errors.UserError(
        f'dataset {name!r} in data_dir {data_dir!r} is stored as {found}, which needs TensorFlow '
        f'to read; rebuild it as {FILE_FORMAT}: `tfds build {name} --data_dir {data_dir} '
        f'--file_format {FILE_FORMAT}` (or convert it with `tfds convert_format`)')


def _check_mnist_idx_source(builder, manual_dir: str) -> None:
  """Refuses a prepared `mnist_idx` that was made from other files than those in manual_dir."""
  recorded = dict((builder.info.metadata or {}).get('source_files', {}))
  current = mnist_idx_builder.source_files(manual_dir)
  if recorded != current:
    raise errors.UserError(
        f'mnist_idx in {builder.data_dir!r} was prepared from other files than those in '
        f'manual_dir {manual_dir!r} ({sorted(recorded)} vs {sorted(current)}); use another '
        'data_dir, or delete that directory to prepare it again')


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

