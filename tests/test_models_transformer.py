"""Transformer families (BERT, GPT) and generation: sizes, masks, precision, learning, sampling."""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from research import models
from research.core import generate as generate_lib, tokens
from research.errors import UserError
from flax import linen as nn

from research.models import attention, bert, gpt
from research.models.context import Context

SEQ_LEN = 12
SUMS = ['12+35=47', '3+4=7', '100+1=101', '56+78=134', '9+9=18', '21+21=42', '7+70=77', '0+0=0']


def _cfg(**fields):
  return ml_collections.ConfigDict(
      dict(num_layers=2, hidden_size=32, num_heads=4, mlp_dim=64, dropout_rate=0.0) | fields)


def _complete(family, cfg):
  """`cfg` with the family's schema defaults for the fields it does not set."""
  return models.complete(ml_collections.ConfigDict(
      dict(name=family.__name__.rsplit('.', 1)[-1]) | cfg.to_dict()))


def _build(family, num_outputs=tokens.VOCAB_SIZE, dtype=jnp.float32, **fields):
  cfg = _complete(family, _cfg(**fields))
  family.validate(cfg)
  return family.from_config(cfg, Context(num_outputs, (SEQ_LEN,), dtype))


def _init(model, seed=0):
  return jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.zeros((1, SEQ_LEN), jnp.int32))['params']


@functools.partial(jax.jit, static_argnames=('model', 'train'))
def _apply(model, params, x, train=False, rngs=None):
  """Jitted apply: eager Flax dispatches (and compiles) op by op, which is slower here."""
  return model.apply({'params': params}, x, train=train, rngs=rngs)


# Parameters depend on neither dtype nor dropout, so each head's are made once and shared.
@pytest.fixture(scope='module')
def gpt_params():
  return _init(_build(gpt))


@pytest.fixture(scope='module')
def mlm_params():
  return _init(_build(bert))


@pytest.fixture(scope='module')
def classify_params():
  return _init(_build(bert, 2, head='classify'))


def _batch(strings, length=SEQ_LEN):
  return jnp.asarray(np.stack([tokens.encode(s, length) for s in strings]))


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _stack_params(vocab, max_len, d, m, layers):
  """Embeddings + per layer (attention + MLP + two LayerNorms) + the final LayerNorm."""
  embed = vocab * d + max_len * d
  layer = (4 * d * d + 4 * d) + (2 * d * m + d + m) + 2 * (2 * d)
  return embed + layers * layer + 2 * d


@pytest.mark.parametrize('family, fields, num_outputs, head_params', [
    (gpt, dict(tie_embeddings=True), 256, lambda d, v, c: 0),
    (gpt, dict(tie_embeddings=False), 256, lambda d, v, c: v * d),
    (bert, dict(head='mlm'), 256, lambda d, v, c: (d * d + d) + 2 * d + v),
    (bert, dict(head='mlm', tie_embeddings=False), 256,
     lambda d, v, c: (d * d + d) + 2 * d + (v * d + v)),
    (bert, dict(head='classify', pool='first'), 3, lambda d, v, c: (d * d + d) + (d * c + c)),
])
def test_parameter_count_matches_formula(family, fields, num_outputs, head_params):
  d, m, layers, max_len, vocab = 24, 40, 3, 20, 256
  model = _build(family, num_outputs, num_layers=layers, hidden_size=d, num_heads=3, mlp_dim=m,
                 max_len=max_len, **fields)
  # Shapes only (no compilation): jax.eval_shape traces init and apply abstractly.
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, SEQ_LEN), jnp.int32))
  expected = _stack_params(vocab, max_len, d, m, layers) + head_params(d, vocab, num_outputs)
  assert _count(params) == expected
  logits = jax.eval_shape(model.apply, params, _batch(SUMS[:2]))
  assert logits.shape == ((2, SEQ_LEN, vocab) if num_outputs == vocab else (2, num_outputs))


def _random_tokens(seed, shape=(2, SEQ_LEN)):
  return jax.random.randint(jax.random.PRNGKey(seed), shape, 2, tokens.VOCAB_SIZE)


def test_gpt_is_causal(gpt_params):
  model = _build(gpt)
  a = _random_tokens(1)
  b = a.at[:, 6:].set(_random_tokens(2)[:, 6:])
  logits_a, logits_b = _apply(model, gpt_params, a), _apply(model, gpt_params, b)
  np.testing.assert_allclose(logits_a[:, :6], logits_b[:, :6], atol=1e-6)
  assert not np.allclose(logits_a[:, 6:], logits_b[:, 6:], atol=1e-3)


def test_bert_is_bidirectional(mlm_params):
  model = _build(bert)
  a = _random_tokens(1)
  b = a.at[:, 9].set((a[:, 9] + 7) % 250 + 2)
  logits_a, logits_b = _apply(model, mlm_params, a), _apply(model, mlm_params, b)
  assert not np.allclose(logits_a[:, 3], logits_b[:, 3], atol=1e-4)


@pytest.mark.parametrize('head', ['mlm', 'classify'])
def test_bert_ignores_padding(head, mlm_params, classify_params):
  """Outputs for real tokens are the same however much PAD follows, alone or in a batch."""
  model = _build(bert, 256 if head == 'mlm' else 2, head=head)
  params = mlm_params if head == 'mlm' else classify_params
  padded = _apply(model, params, _batch(['hello', '12+35=47']))
  alone = _apply(model, params, _batch(['hello'], length=5))
  padded = padded[:1, :5] if head == 'mlm' else padded[:1]
  np.testing.assert_allclose(padded, alone, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize('family, head', [(gpt, None), (bert, 'mlm'), (bert, 'classify')])
def test_bfloat16_computes_in_bf16_but_returns_float32(family, head, request):
  fields, num_outputs = (dict(head=head), 2 if head == 'classify' else 256) if head else ({}, 256)
  params = request.getfixturevalue(f'{head or "gpt"}_params')
  model16 = _build(family, num_outputs, dtype=jnp.bfloat16, **fields)
  abstract = jax.eval_shape(model16.init, jax.random.PRNGKey(0), _batch(SUMS[:1]))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(abstract))
  x = _batch(SUMS[:2])
  logits16 = _apply(model16, params, x)
  logits32 = _apply(_build(family, num_outputs, **fields), params, x)
  assert logits16.dtype == jnp.float32
  assert not np.array_equal(logits16, logits32)  # Really computed in bfloat16...
  np.testing.assert_allclose(logits16, logits32, atol=0.1, rtol=0.1)  # ...and close.


def test_dropout_only_in_training(gpt_params):
  model = _build(gpt, dropout_rate=0.3)
  x = _batch(SUMS[:2])
  evals = [_apply(model, gpt_params, x) for _ in range(2)]
  np.testing.assert_array_equal(*evals)
  a, b = (_apply(model, gpt_params, x, train=True, rngs={'dropout': jax.random.PRNGKey(s)})
          for s in (0, 1))
  assert not np.allclose(a, b) and not np.allclose(a, evals[0])


def _lm_loss(logits, inputs):
  """Next-token cross-entropy on every target after a real token (so the first PAD counts)."""
  weights = (inputs[:, :-1] != tokens.PAD).astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], inputs[:, 1:])
  return jnp.sum(losses * weights) / jnp.sum(weights)


def _mask_tokens(rng, inputs, rate=0.15):
  """MLM corruption: ~rate of the real tokens become MASK (at least one per example)."""
  real = inputs != tokens.PAD
  scores = jnp.where(real, jax.random.uniform(rng, inputs.shape), 2.0)
  chosen = (scores < rate) | (scores == scores.min(axis=1, keepdims=True))
  return jnp.where(chosen, tokens.MASK, inputs), chosen.astype(jnp.float32)


def _mlm_loss(model, params, inputs, rng):
  corrupted, weights = _mask_tokens(rng, inputs)
  logits = model.apply({'params': params}, corrupted)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, inputs)
  return jnp.sum(losses * weights) / jnp.sum(weights)


def _fit(loss_fn, params, steps, lr=1e-2):
  """Adam on loss_fn(params, step); returns the final params and the loss before each step."""
  opt = optax.adam(lr)

  @jax.jit
  def update(params, opt_state, step):
    loss, grads = jax.value_and_grad(loss_fn)(params, step)
    updates, opt_state = opt.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state, history = opt.init(params), []
  for step in range(steps):
    params, opt_state, loss = update(params, opt_state, step)
    history.append(loss)
  return params, [float(loss) for loss in history]


@pytest.fixture(scope='module')
def overfit_gpt(gpt_params):
  """A GPT trained on SUMS until it has memorised them (answers and the PAD ending each)."""
  model = _build(gpt)
  x = _batch(SUMS)
  params, history = _fit(lambda p, _: _lm_loss(model.apply({'params': p}, x), x), gpt_params,
                         150)
  return model, params, history


def test_gpt_learns_next_tokens(overfit_gpt):
  history = overfit_gpt[2]
  assert history[40] < 0.3 * history[0], history[:41]


def test_bert_learns_masked_tokens(mlm_params):
  model = _build(bert)
  x = _batch(SUMS)
  rng = jax.random.PRNGKey(0)
  eval_loss = jax.jit(lambda p: _mlm_loss(model, p, x, rng))
  initial = float(eval_loss(mlm_params))
  # Fresh masks every step, scored on a mask it was not trained on: the model must use context.
  params, _ = _fit(lambda p, s: _mlm_loss(model, p, x, jax.random.fold_in(rng, s + 1)),
                   mlm_params, 200, lr=3e-3)
  assert float(eval_loss(params)) < 0.3 * initial


def test_bert_learns_to_classify(classify_params):
  model = _build(bert, 2, head='classify')
  wrong = ['12+35=48', '3+4=8', '100+1=110', '9+9=19']
  x, labels = _batch(SUMS[:4] + wrong), jnp.array([1] * 4 + [0] * 4)
  loss = lambda p, _: optax.softmax_cross_entropy_with_integer_labels(
      model.apply({'params': p}, x), labels).mean()
  _, history = _fit(loss, classify_params, 40)
  assert history[-1] < 0.3 * history[0], history


def test_greedy_generation_reproduces_memorised_answers(overfit_gpt):
  model, params, _ = overfit_gpt
  full = _batch(SUMS)
  lengths = jnp.array([s.index('=') + 1 for s in SUMS])  # Prompts of 4 to 6 tokens.
  out = generate_lib.generate(model, params, full, lengths, max_new_tokens=4)
  assert [tokens.decode(row) for row in np.asarray(out)] == SUMS
  assert np.asarray(generate_lib.answer_exact_match(out, full, lengths)).all()
  np.testing.assert_array_equal(
      out, generate_lib.generate(model, params, full, lengths, max_new_tokens=4))
  top1 = generate_lib.generate(model, params, full, lengths, max_new_tokens=4,
                               rng=jax.random.PRNGKey(3), temperature=1.0, top_k=1)
  np.testing.assert_array_equal(out, top1)


def test_generation_nests_in_jit_and_respects_each_prompt_length(gpt_params):
  model = _build(gpt)
  prompts = _batch(['12+35=47', '3+4=7'])  # What follows each prompt must be ignored.
  lengths = jnp.array([6, 2])
  run = jax.jit(lambda params, prompts, lengths: generate_lib.generate(
      model, params, prompts, lengths, 3))
  out = np.asarray(run(gpt_params, prompts, lengths))
  for row, length in enumerate([6, 2]):
    np.testing.assert_array_equal(out[row, :length], prompts[row, :length])
    assert (out[row, length + 3:] == tokens.PAD).all()
    alone = generate_lib.generate(model, gpt_params, prompts[row:row + 1], lengths[row:row + 1], 3)
    np.testing.assert_array_equal(out[row], alone[0])  # As if generated alone.
  # Tokens that would land past the buffer's end are dropped, not an error.
  long = run(gpt_params, prompts, jnp.array([10, 11]))
  np.testing.assert_array_equal(long[:, :10], prompts[:, :10])


def test_sampling_is_reproducible_per_rng(gpt_params):
  model = _build(gpt)
  prompts, lengths = _batch(SUMS[:2]), jnp.array([2, 3])
  sample = functools.partial(generate_lib.generate, model, gpt_params, prompts, lengths, 8,
                             temperature=1.0)
  np.testing.assert_array_equal(sample(rng=jax.random.PRNGKey(0)),
                                sample(rng=jax.random.PRNGKey(0)))
  assert not np.array_equal(sample(rng=jax.random.PRNGKey(0)), sample(rng=jax.random.PRNGKey(1)))
  top3 = np.asarray(sample(rng=jax.random.PRNGKey(0), top_k=3))
  logits = np.asarray(_apply(model, gpt_params, jnp.asarray(top3)))
  for row, length in enumerate([2, 3]):  # Each sampled token was among the 3 most likely.
    for pos in range(length, length + 8):
      assert top3[row, pos] in np.argsort(logits[row, pos - 1])[-3:]


def test_generating_only_the_compared_tokens_gives_the_same_verdicts(overfit_gpt, gpt_params):
  """Exact match decodes only `steps_to_compare` tokens: the compared positions, and so the
  verdicts, equal those of decoding to the end of the buffer, for a model that answers right
  (memorised) and one that does not (untrained), with a prompt answered wrong on purpose."""
  trained_model, trained, _ = overfit_gpt
  full = _batch(SUMS + ['12+35=48'])
  lengths = np.array([s.index('=') + 1 for s in SUMS] + [6])
  steps = generate_lib.steps_to_compare(full, lengths)
  assert steps == max(len(s) - s.index('=') for s in SUMS + ['12+35=48'])  # Answer + its end.
  for model, params in ((trained_model, trained), (_build(gpt), gpt_params)):
    everything = generate_lib.generate(model, params, full, lengths, full.shape[1] - 1)
    bounded = jax.jit(lambda p, t, n, k: generate_lib.generate(
        model, p, t, n, full.shape[1] - 1, steps=k))(params, full, lengths, np.int32(steps))
    np.testing.assert_array_equal(
        generate_lib.answer_exact_match(everything, full, lengths),
        generate_lib.answer_exact_match(bounded, full, lengths))
    for row, length in enumerate(lengths):  # Every compared position is the same token.
      np.testing.assert_array_equal(everything[row, :length + steps],
                                    bounded[row, :length + steps])
  verdicts = generate_lib.answer_exact_match(
      generate_lib.generate(trained_model, trained, full, lengths, steps), full, lengths)
  assert np.asarray(verdicts)[:-1].all() and not np.asarray(verdicts)[-1]


@pytest.mark.parametrize('dtype, tolerance', [(jnp.float32, 1e-6), (jnp.bfloat16, 2e-2)])
def test_fused_attention_equals_flax_softmax_attention(dtype, tolerance):
  """jax.nn.dot_product_attention (cuDNN's fused kernel on GPUs) against Flax's explicit softmax,
  under the causal and the key-padding masks the families use."""
  q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (3, SEQ_LEN, 4, 8), dtype) for i in range(3))
  batch = _batch(SUMS[:3])
  for mask in (nn.make_causal_mask(batch), nn.make_attention_mask(batch, batch != tokens.PAD)):
    fused = jax.jit(attention.fused, static_argnames='dtype')(q, k, v, mask=mask, dtype=dtype)
    explicit = jax.jit(functools.partial(nn.dot_product_attention, force_fp32_for_softmax=True),
                       static_argnames='dtype')(q, k, v, mask=mask, dtype=dtype)
    assert fused.dtype == dtype
    np.testing.assert_allclose(np.asarray(fused, np.float32), np.asarray(explicit, np.float32),
                               atol=tolerance, rtol=tolerance)


def _full_pass_greedy(model, params, buffer, lengths, new_tokens):
  """The oracle: a full forward pass over the buffer for every new token (no cache)."""
  buffer, lengths = np.array(buffer), np.asarray(lengths)
  buffer[np.arange(SEQ_LEN)[None, :] >= lengths[:, None]] = tokens.PAD
  for i in range(new_tokens):
    logits = np.asarray(_apply(model, params, jnp.asarray(buffer)))
    last = np.clip(lengths + i - 1, 0, SEQ_LEN - 1)
    for row, token in enumerate(logits[np.arange(len(buffer)), last].argmax(-1)):
      if lengths[row] + i < SEQ_LEN:
        buffer[row, lengths[row] + i] = token
  return buffer


def test_cached_decoding_equals_full_forward_passes(overfit_gpt, gpt_params):
  """The key/value cache changes nothing but the work: the decoding model has the same
  parameters, its first pass gives the full pass's logits, and greedy generation writes the
  same tokens as a full forward pass per token, for a trained and an untrained model, with
  prompts of different lengths and some running off the end of the buffer."""
  model, trained, _ = overfit_gpt
  full = _batch(SUMS)
  positions = jnp.broadcast_to(jnp.arange(SEQ_LEN), full.shape)
  decoder = model.clone(decode=True)
  shapes = jax.eval_shape(decoder.init, jax.random.PRNGKey(0), full, positions=positions)
  assert jax.tree.map(lambda x: x.shape, shapes['params']) == jax.tree.map(jnp.shape, trained)
  cached, _ = decoder.apply({'params': trained}, full, positions=positions, mutable=['cache'])
  np.testing.assert_allclose(cached, _apply(model, trained, full), atol=1e-5, rtol=1e-5)
  lengths = np.array([s.index('=') + 1 for s in SUMS[:6]] + [10, 11])
  for params in (trained, gpt_params):
    out = generate_lib.generate(model, params, full, lengths, max_new_tokens=SEQ_LEN)
    np.testing.assert_array_equal(out, _full_pass_greedy(model, params, full, lengths, SEQ_LEN))


def test_answer_exact_match_on_hand_made_arrays():
  reference = np.array([[5, 6, 7, 8, 0, 0],
                        [5, 6, 7, 8, 0, 0],
                        [5, 6, 7, 8, 0, 0],
                        [5, 6, 7, 8, 9, 4],
                        [5, 6, 0, 0, 0, 0]])
  generated = np.array([[5, 6, 7, 8, 0, 3],   # Right answer, then stops: match.
                        [5, 6, 7, 8, 9, 0],   # Right digits, but does not stop: no match.
                        [5, 6, 7, 9, 0, 0],   # Wrong digit: no match.
                        [9, 9, 7, 8, 9, 4],   # Answer fills the buffer; prompt not compared.
                        [5, 6, 0, 0, 0, 0]])  # Empty reference continuation, generated PAD.
  lengths = np.array([2, 2, 2, 2, 2])
  np.testing.assert_array_equal(generate_lib.answer_exact_match(generated, reference, lengths),
                                [True, False, False, True, True])
  np.testing.assert_array_equal(
      generate_lib.answer_exact_match(generated, reference, lengths, require_end=False),
      [True, True, False, True, True])


@pytest.mark.parametrize('family, fields, message', [
    (gpt, dict(hidden_size=30, num_heads=4), 'divisible'),
    (bert, dict(head='mln'), "unknown config.model.head 'mln' \\(did you mean 'mlm'\\?\\)"),
    (bert, dict(pool='max'), 'unknown config.model.pool'),
    (gpt, dict(dropout_rate=1.0), 'dropout_rate must be in \\[0, 1\\)'),
    (bert, dict(dropout_rate=-0.1), 'dropout_rate'),
    (gpt, dict(num_layers=0), 'num_layers'),
    (gpt, dict(tie_embeddings='yes'), 'tie_embeddings'),
])
def test_validate_rejects_bad_values(family, fields, message):
  with pytest.raises(UserError, match=message):
    family.validate(_complete(family, _cfg(**fields)))


def test_from_config_rejects_inconsistent_context():
  with pytest.raises(UserError, match='must equal config.model.vocab_size'):
    gpt.from_config(_complete(gpt, _cfg()), Context(10, (SEQ_LEN,)))
  with pytest.raises(UserError, match='must equal config.model.vocab_size'):
    bert.from_config(_complete(bert, _cfg(head='mlm')), Context(2, (SEQ_LEN,)))
  with pytest.raises(UserError, match='max_len'):
    gpt.from_config(_complete(gpt, _cfg(max_len=8)), Context(256, (SEQ_LEN,)))
  with pytest.raises(UserError, match='shape'):
    bert.from_config(_complete(bert, _cfg(head='classify')), Context(10, (28, 28, 1)))
