"""A run's dataset handle: its `DatasetInfo`, and its prepared data, opened at most once.

A run builds one handle (`experiment.build`) and hands it to every iterator and evaluator
(`pipeline.train_iterator`, `pipeline.eval_batches`), so the dataset is prepared, checked and,
for text cut into windows, cut into its windows once per run, not once per iterator.

    handle = data.open(config.dataset)             # prepared and checked now (training)
    handle = data.recorded(config.dataset, record) # a finished run's: nothing opened yet

A finished run's workdir records its dataset's info (`record()`, written to dataset.json at the
start of training), because the info is all that rebuilding its model needs: `load_run` then
reads no data at all, and the data is opened only when batches are asked for (`research eval`,
`LoadedRun.batch`). Opened then, it must still be the dataset the run trained on.
"""
import logging
import threading

from research import errors
from research.data import catalog
from research.rundir import layout

log = logging.getLogger('research')

# The fields of a record (dataset.json), as `DatasetInfo` names them; a record written before the
# optional ones existed reads them as None (a dataset without a real-valued target).
_REQUIRED = ('name', 'num_classes', 'input_shape', 'input_dtype', 'vocab_size', 'split_sizes',
             'splits')
_OPTIONAL = ('target_shape', 'target_scale', 'alphabet', 'sample_rate')
_FIELDS = _REQUIRED + _OPTIONAL


class Dataset:
  """One dataset config's info and, once opened, its `catalog.Prepared` (builder, encoding,
  text windows). `config` is the `dataset` config it was opened from (the pipeline reads
  `config.shuffle`)."""

  def __init__(self, config, info: catalog.DatasetInfo | None = None,
               prepared: catalog.Prepared | None = None):
    if info is None and prepared is None:
      raise ValueError('a Dataset needs its info or its prepared data')
    self.config = config
    self._prepared = prepared
    self._info = prepared.info if prepared is not None else info
    self._lock = threading.Lock()  # Evaluation and prefetch threads may ask at once.

  @property
  def info(self) -> catalog.DatasetInfo:
    return self._info

  @property
  def is_open(self) -> bool:
    return self._prepared is not None

  @property
  def prepared(self) -> catalog.Prepared:
    """The prepared data, opened (prepared if need be, and checked) on first use."""
    with self._lock:
      if self._prepared is None:
        prepared = _load(self.config, verify=True)
        differ = [f'{key}: {a!r} -> {b!r}' for key, (a, b) in
                  _differences(self._info, prepared.info).items()]
        if differ:
          raise errors.UserError(
              f'dataset {self._info.name!r} in data_dir {prepared.builder.data_dir!r} is not the '
              f"one this run was trained on ({'; '.join(differ)}); point dataset.data_dir at "
              'the data it was trained on')
        self._prepared = prepared
      return self._prepared

  def record(self) -> dict:
    """What a workdir records of this dataset (dataset.json): the info as plain JSON values."""
    return {key: _plain(getattr(self._info, key)) for key in _FIELDS}


def open(dataset_cfg, verify: bool = True) -> Dataset:  # pylint: disable=redefined-builtin
  """The handle of `dataset_cfg`, prepared in its data_dir now if need be (see
  `catalog.prepare`); `verify`: check the prepared files first, as `catalog.prepare` does."""
  return Dataset(dataset_cfg, prepared=_load(dataset_cfg, verify))


def recorded(dataset_cfg, record: dict, where: str = layout.DATASET) -> Dataset:
  """The handle of a finished run's dataset from its `record()` (read from `where`); nothing is
  opened until batches are asked for."""
  try:
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
      raise ValueError(f"lacks {', '.join(missing)}")
    info = catalog.DatasetInfo(
        name=str(record['name']), num_classes=_optional_int(record['num_classes']),
        input_shape=tuple(int(n) for n in record['input_shape']),
        split_sizes={str(k): int(v) for k, v in record['split_sizes'].items()},
        splits={str(k): str(v) for k, v in record['splits'].items()},
        input_dtype=str(record['input_dtype']), vocab_size=_optional_int(record['vocab_size']),
        target_shape=_optional_tuple(record.get('target_shape'), int),
        target_scale=_optional_tuple(record.get('target_scale'), float),
        alphabet=None if record.get('alphabet') is None else str(record['alphabet']),
        sample_rate=_optional_int(record.get('sample_rate')))
  except (ValueError, TypeError, AttributeError) as e:
    raise errors.UserError(f'{where} is damaged ({e}); delete it to read the dataset instead, '
                           'or restore it') from None
  return Dataset(dataset_cfg, info=info)


def _load(dataset_cfg, verify: bool) -> catalog.Prepared:
  prepared = catalog.load(dataset_cfg, verify=verify)
  # Tests count these lines: a run opens its dataset once.
  log.debug('opened dataset %r in %s', prepared.info.name, prepared.builder.data_dir)
  return prepared


def _differences(a: catalog.DatasetInfo, b: catalog.DatasetInfo) -> dict:
  """{field: (a's, b's)} for each recorded field whose values differ."""
  return {key: (getattr(a, key), getattr(b, key)) for key in _FIELDS
          if _plain(getattr(a, key)) != _plain(getattr(b, key))}


def _plain(value):
  if isinstance(value, tuple):
    return [_plain(v) for v in value]
  if isinstance(value, dict):
    return {str(k): _plain(v) for k, v in value.items()}
  if hasattr(value, 'item'):  # A NumPy scalar.
    return value.item()
  return value


def _optional_int(value) -> int | None:
  return None if value is None else int(value)


def _optional_tuple(value, type_) -> tuple | None:
  return None if value is None else tuple(type_(v) for v in value)
