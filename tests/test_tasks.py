"""Tasks (inputs, targets, weighted metrics), the added losses, and early stopping."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.core import losses, tasks, tokens
from research.errors import UserError
from research.run import early_stopping


def test_classification_sums_count_only_real_examples():
  task = tasks.Task('classification')
  logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
  batch = {'input': jnp.zeros((3, 4)), 'label': jnp.array([0, 0, 1]),
           'mask': jnp.array([True, True, False])}
  inputs, targets = task.prepare(batch, jax.random.PRNGKey(0))
  loss, sums = task.loss_and_sums(losses.get('cross_entropy'), logits, targets)
  per = -jax.nn.log_softmax(logits)[jnp.arange(3), batch['label']]
  assert float(loss) == pytest.approx(float(per[:2].mean()), rel=1e-6)
  means = task.summarize(jax.device_get(sums))
  assert means['accuracy'] == 0.5 and means['count'] == 2 and 'perplexity' not in means


def test_top5_accuracy_for_more_than_five_classes():
  task = tasks.Task('classification')
  logits = jnp.arange(10.0)[None, :].repeat(2, 0)  # Top-5 classes: 5..9.
  batch = {'input': jnp.zeros((2, 1)), 'label': jnp.array([9, 2])}
  _, sums = task.loss_and_sums(losses.get('cross_entropy'), logits,
                               task.prepare(batch, None)[1])
  means = task.summarize(jax.device_get(sums))
  assert means['accuracy'] == 0.5 and means['top5_accuracy'] == 0.5


def test_language_model_shifts_and_ignores_padding():
  task = tasks.Task('language_model')
  seq = jnp.stack([tokens.encode('12+3=15', 10), tokens.encode('1+1=2', 10)])
  batch = {'input': seq, 'prompt_length': jnp.array([5, 4])}
  inputs, targets = task.prepare(batch, None)
  np.testing.assert_array_equal(inputs, seq[:, :-1])
  np.testing.assert_array_equal(targets['labels'], seq[:, 1:])
  # Every real input predicts the next token, the end-of-text PAD included.
  np.testing.assert_array_equal(targets['weights'].sum(1), [7, 5])
  # The answer: '15' after '12+3=', then the end marker.
  np.testing.assert_array_equal(targets['answer_weights'][0], [0, 0, 0, 0, 1, 1, 1, 0, 0])
  # Perfect logits for the first sequence's answer, wrong elsewhere.
  logits = jax.nn.one_hot(targets['labels'], tokens.VOCAB_SIZE) * 10.0
  logits = logits.at[1].set(0.0)
  _, sums = task.loss_and_sums(losses.get('cross_entropy'), logits, targets)
  means = task.summarize(jax.device_get(sums))
  assert means['answer_accuracy'] == 0.5 and means['count'] == 2
  # Row 2's all-zero logits predict PAD, right only for its end marker.
  assert means['accuracy'] == pytest.approx((7 + 1) / 12)
  assert means['perplexity'] == pytest.approx(np.exp(means['loss']))


def test_masked_lm_hides_only_real_tokens_at_the_rate():
  task = tasks.Task('masked_lm', mask_rate=0.3)
  seq = jnp.stack([tokens.encode('123+456=579', 16)] * 64)
  inputs, targets = task.prepare({'input': seq}, jax.random.PRNGKey(3))
  hidden = np.asarray(targets['weights']) > 0
  assert not hidden[np.asarray(seq) == tokens.PAD].any()
  assert 0.2 < hidden[np.asarray(seq) != tokens.PAD].mean() < 0.4
  np.testing.assert_array_equal(np.asarray(inputs)[hidden], tokens.MASK)
  np.testing.assert_array_equal(np.asarray(inputs)[~hidden], np.asarray(seq)[~hidden])


def test_label_smoothing_and_sigmoid_bce_match_hand_computation():
  logits, labels = jnp.array([[1.0, 2.0, 3.0]]), jnp.array([2])
  smooth = 0.3
  target = np.array([0.1, 0.1, 0.8])  # (1 - 0.3) * one_hot + 0.3 / 3
  expected = -(target * np.asarray(jax.nn.log_softmax(logits[0]))).sum()
  assert float(losses.get('cross_entropy', smooth)(logits, labels)[0]) == pytest.approx(
      expected, rel=1e-6)
  sig = 1 / (1 + np.exp(-np.array([1.0, 2.0, 3.0])))
  bce = -(np.log(1 - sig[0]) + np.log(1 - sig[1]) + np.log(sig[2])) / 3
  assert float(losses.get('sigmoid_binary_cross_entropy')(logits, labels)[0]) == pytest.approx(
      bce, rel=1e-6)
  total, count = losses.masked_token_cross_entropy(
      jnp.zeros((1, 2, 4)), jnp.array([[1, 2]]), jnp.array([[1, 0]]))
  assert float(total) == pytest.approx(np.log(4)) and float(count) == 1.0


def test_bad_task_options():
  with pytest.raises(UserError, match='label_smoothing must be in'):
    losses.get('cross_entropy', 1.0)
  with pytest.raises(UserError, match="unknown config.task 'lm'"):
    tasks.create({'task': 'lm'})


def test_early_stopping_counts_evaluations_without_improvement():
  stopper = early_stopping.EarlyStopping(metric='accuracy', patience=2)
  decisions = [stopper.update(s, {'accuracy': a})
               for s, a in [(1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6), (5, 0.9)]]
  assert decisions == [False, False, False, True, False]
  assert stopper.best_step == 5  # (It would have stopped at 4; update keeps counting.)
  loss_stopper = early_stopping.EarlyStopping(metric='loss', patience=1, min_delta=0.05)
  assert not loss_stopper.update(1, {'loss': 1.0})
  assert loss_stopper.update(2, {'loss': 0.97})  # Better, but not by min_delta.
  assert not early_stopping.EarlyStopping(patience=0).update(1, {'accuracy': 0.1})
