"""The shared hyper-parameter checks in research/models/checks.py: what each accepts and rejects."""
import re

import pytest

from research.errors import UserError
from research.models import checks


@pytest.mark.parametrize('rate', [0, 0.0, 0.5, 0.999])
def test_dropout_rate_accepts_numbers_in_unit_interval(rate):
  assert checks.dropout_rate(rate) == rate


@pytest.mark.parametrize('rate', [1.0, -0.1, 1.5, True, False, None, '0.1'])
def test_dropout_rate_rejects(rate):
  message = f'config.model.dropout_rate must be in [0, 1), got {rate!r}'
  with pytest.raises(UserError, match=re.escape(message)):
    checks.dropout_rate(rate)


@pytest.mark.parametrize('value, minimum', [(1, 1), (64, 1), (2, 2)])
def test_positive_int_accepts(value, minimum):
  assert checks.positive_int('hidden_size', value, minimum) == value


@pytest.mark.parametrize('value, minimum', [(0, 1), (-3, 1), (2.5, 1), (True, 1), ('4', 1),
                                            (None, 1), (1, 2)])
def test_positive_int_rejects(value, minimum):
  message = f'config.model.hidden_size must be an int >= {minimum}, got {value!r}'
  with pytest.raises(UserError, match=re.escape(message)):
    checks.positive_int('hidden_size', value, minimum)


TABLE = {18: 'a', 34: 'b', 'tiny': 'c'}


@pytest.mark.parametrize('value, key', [(18, 18), ('18', 18), (' 34 ', 34), ('tiny', 'tiny')])
def test_table_key_normalises_known_keys(value, key):
  assert checks.table_key(value, TABLE) == key


@pytest.mark.parametrize('value', [20, '20', 'huge', True, None, 18.5])
def test_table_key_is_none_for_unknown_values(value):
  assert checks.table_key(value, TABLE) is None


def test_table_key_rejects_bools_even_when_they_equal_a_key():
  assert checks.table_key(True, {1: 'one'}) is None
  assert checks.table_key(1, {1: 'one'}) == 1
