"""Is a prepared TFDS dataset whole? Checked when a run opens it, before any training.

A prepared dataset is a directory `data_dir/NAME[/CONFIG]/VERSION` holding `dataset_info.json`
(the splits and each shard's record count), `features.json`, maybe `metadata.json`, and the
ArrayRecord files of every split. Damage there (a copy cut short, bytes overwritten on disk, a
hand-edited JSON) otherwise surfaces late and without a name: TFDS reports a parse error without
the file, the reader's "Corrupted Riegeli/records file" appears only when that part of a file is
read (the test split: after training), and a record count that disagrees with its file makes
evaluation silently use fewer examples, or fail on a missing count.

`metadata_problem` and `files_problem` return what is wrong (or None); `damaged` turns that into
the one-line error that names the directory and how to prepare the dataset again.
"""
import json
import os
import pathlib

from array_record.python import array_record_module

from research import errors

# Up to this many bytes of a dataset's files, every record is read back (each chunk's hash is
# checked: ~40 MB/s on one CPU core); larger datasets get only the file index and record counts
# checked here, and a damaged chunk is named when it is read.
FULL_CHECK_BYTES = 64 << 20
_READ_CHUNK = 4096  # Records read per call in the full check.
_JSON_FILES = ('dataset_info.json', 'features.json', 'metadata.json')
_INFO_KEYS = ('name', 'version', 'splits')


def damaged(name: str, directory, problem: str, rebuild: str) -> errors.UserError:
  """The error for a damaged prepared dataset; `rebuild` says how to prepare it again."""
  return errors.UserError(f'the prepared dataset {name!r} in {directory} is damaged ({problem}); '
                          f'{rebuild}')


def rebuild_hint(name: str, directory, bundled: bool) -> str:
  """How to replace a damaged prepared copy of `name` that lives in `directory`."""
  if bundled:
    return f'delete {directory} and rerun: it is prepared again from the bundled data'
  return (f'delete {directory} and prepare it again (`tfds build {name} --file_format '
          'array_record`, as for the first time)')


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0][:200] if lines else ""}'


def _json_problem(path: pathlib.Path) -> str | None:
  """What is wrong with one metadata file (absent optional files are fine)."""
  if not path.exists():
    return f'{path.name} is missing' if path.name == 'dataset_info.json' else None
  try:
    content = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, UnicodeDecodeError, ValueError) as e:
    return f'{path.name} is not readable JSON: {_first_line(e)}'
  if not isinstance(content, dict):
    return f'{path.name} does not hold a JSON object'
  if path.name == 'dataset_info.json':
    missing = [k for k in _INFO_KEYS if k not in content]
    if missing:
      return f'{path.name} lacks {", ".join(missing)}'
  return None


def metadata_problem(version_dir) -> str | None:
  """What is wrong with the JSON files of one prepared version directory, or None."""
  for filename in _JSON_FILES:
    problem = _json_problem(pathlib.Path(version_dir) / filename)
    if problem:
      return problem
  return None


def find_metadata_problem(data_dir: str, name: str) -> tuple[pathlib.Path, str] | None:
  """(version directory, problem) for a damaged prepared copy of `name` in `data_dir`, or None.

  For when TFDS cannot even construct the builder: every directory under `data_dir/NAME` (the
  name without a `:version`) that holds a dataset_info.json is looked at."""
  root = pathlib.Path(data_dir, name.split(':')[0])
  if not root.is_dir():
    return None
  for info in sorted(root.glob('**/dataset_info.json')):
    problem = metadata_problem(info.parent)
    if problem:
      return info.parent, problem
  return None


def files_problem(builder, full_check_bytes: int = FULL_CHECK_BYTES) -> str | None:
  """What is wrong with the ArrayRecord files of `builder`'s prepared splits, or None.

  Every split must list its shards, every shard file must exist and hold as many records as
  dataset_info.json says; when all files together are at most `full_check_bytes`, every record
  is read back too. Builders stored in another format are not looked at (catalog refuses them).
  """
  if getattr(builder.info.file_format, 'value', None) != 'array_record':
    return None
  shards = []
  for split_name, split in builder.info.splits.items():
    if not split.shard_lengths:
      return f'dataset_info.json lists no records for split {split_name!r}'
    paths = [pathlib.Path(os.fspath(p)) for p in split.filepaths]
    if len(paths) != len(split.shard_lengths):
      return (f'dataset_info.json lists {len(split.shard_lengths)} shards for split '
              f'{split_name!r} but names {len(paths)} files')
    shards.extend(zip(paths, split.shard_lengths))
  missing = [path.name for path, _ in shards if not path.is_file()]
  if missing:
    return f'missing file {missing[0]}' + (f' and {len(missing) - 1} more' if missing[1:] else '')
  read_all = sum(path.stat().st_size for path, _ in shards) <= full_check_bytes
  for path, expected in shards:
    problem = _shard_problem(path, int(expected), read_all)
    if problem:
      return f'{path.name}: {problem}'
  return None


def _shard_problem(path: pathlib.Path, expected: int, read_all: bool) -> str | None:
  """The reader's complaint about one shard file, or a record count unlike `expected`.

  The reader raises RuntimeError (or OSError) when opening, reading or closing; a file whose
  index cannot be read opens "not ok", and closing it raises the reason."""
  try:
    reader = array_record_module.ArrayRecordReader(str(path))
  except Exception as e:  # pylint: disable=broad-except
    return _first_line(e)
  problem = None
  try:
    if reader.ok():
      found = reader.num_records()
      if found != expected:
        problem = f'holds {found} records where dataset_info.json says {expected}'
      elif read_all:
        for start in range(0, found, _READ_CHUNK):
          reader.read(start, min(found, start + _READ_CHUNK))
  except Exception as e:  # pylint: disable=broad-except
    problem = _first_line(e)
  try:
    reader.close()
  except Exception as e:  # pylint: disable=broad-except
    problem = problem or _first_line(e)
  return problem
