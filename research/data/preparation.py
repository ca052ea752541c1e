"""How a dataset name becomes a TFDS builder prepared in a data_dir.

Bundled names are built here on first use (one process at a time: build_lock.py); any other
registered TFDS name must be prepared already, in the array_record format (the only one TFDS
reads without TensorFlow), or be downloadable from here. A prepared copy is checked before it is
used (`verify`, integrity.py). Every failure is a `UserError` that says what to do.
"""
import os
import re

import tensorflow_datasets as tfds

from research import errors
from research.data import build_lock, idx, integrity, mnist_idx_builder, series_builders

# Names that are prepared here on first use (importing `research.data` registers the builders).
BUNDLED = ('digits', 'mnist1d', 'mnist1d/original', 'mnist1d/shuffled', 'mnist_idx', 'addition',
           'addition/lm', 'addition/check', 'tones', 'speech', 'diabetes', 'sunspots',
           *(f'stocks/{ticker}' for ticker in series_builders.TICKERS))
FILE_FORMAT = 'array_record'


def data_dir(dataset_cfg) -> str:
  """Returns the data_dir to use, created if missing; UserError if it cannot be."""
  path = getattr(dataset_cfg, 'data_dir', None)
  if not path:
    path = os.environ.get('TFDS_DATA_DIR') or os.path.join('~', 'tensorflow_datasets')
  path = os.path.abspath(os.path.expanduser(str(path)))
  if os.path.exists(path) and not os.path.isdir(path):
    raise errors.UserError(f'dataset.data_dir {path!r} exists but is not a directory')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise errors.UserError(f'dataset.data_dir {path!r} cannot be created: {e.strerror}') from e
  return path


def rebuild_hint(name: str, directory) -> str:
  return integrity.rebuild_hint(name, directory, name in BUNDLED)


def verify(name: str, builder) -> None:
  """UserError naming the directory when the prepared copy of `name` is damaged."""
  problem = integrity.metadata_problem(builder.data_dir) or integrity.files_problem(builder)
  if problem:
    raise integrity.damaged(name, builder.data_dir, problem, rebuild_hint(name, builder.data_dir))


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
      raise integrity.damaged(name, directory, problem, rebuild_hint(name, directory)) from e
    if isinstance(e, (ValueError, AssertionError)):  # Unknown config or version.
      raise errors.UserError(f'bad dataset name {name!r}: {_first_line(e)}') from e
    if isinstance(e, ModuleNotFoundError):  # E.g. tfds.features.Audio (speech_commands): TF.
      raise errors.UserError(f'dataset {name!r} needs a package that is not installed to read '
                             f'its features ({_first_line(e)}); install it, e.g. `pip install '
                             'tensorflow`') from e
    raise


def prepared_builder(name: str, data_dir: str, manual_dir: str, download: bool):
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
    waited = _builder(name, data_dir)
    if waited.is_prepared():  # Another process prepared it while we waited.
      return waited
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
