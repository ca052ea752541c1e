"""Every config key and its one default. Imports nothing from `research`: this is the ground.

`TOP` holds the keys every config shares (what `config.base()` builds), `MODELS` each model
family's own fields (`model.name` picks the family; the MLP's are `base()`'s model group),
`DATASET_FIELDS` the dataset fields that only some datasets read, `RL` an agent's own groups
(`env`, `dqn`: only in configs that name an environment), and `CHOICES` the allowed values
of the shared settings that take a name. A value `Unset(T)` is "None until set, then a T": an
`ml_collections` placeholder of that type. A resolved config (`config.resolve`) has every key of
`TOP` and every field of its model family, so code reads attributes and never restates a default.
Registries (models, optimizers, losses, tasks) check the values while they build.
"""
import copy
from typing import Any, Iterator, Mapping


class Unset:
  """A key with no value until one is set (None), of type `type_` once it is."""

  def __init__(self, type_: type, means: str = ''):
    self.type, self.means = type_, means

  def __repr__(self) -> str:
    return f'None ({self.type.__name__})'


MLP = dict(name='mlp', hidden_sizes=(128, 64), activation='relu', dropout_rate=0.0)
_TRANSFORMER = dict(num_layers=2, hidden_size=128, num_heads=4,
                    mlp_dim=None,  # None: 4 * hidden_size.
                    dropout_rate=0.0,
                    max_len=None,  # None: the dataset's sequence length.
                    vocab_size=256,  # core.tokens.VOCAB_SIZE: 256 byte values (PAD/MASK in).
                    tie_embeddings=True, remat='none')

# Each family's fields and defaults (`name` excluded). None where the default depends on the
# data or on another field; the family's module says which.
MODELS: dict[str, dict[str, Any]] = {
    'linear': {},
    'mlp': {k: v for k, v in MLP.items() if k != 'name'},
    'cnn': dict(variant='lenet', channels=None, dropout_rate=0.0),  # None: the variant's.
    'resnet': dict(depth=18, width=None, small_inputs=True, remat='none'),  # None: depth's.
    'vgg': dict(depth=11, batch_norm=True, width_multiplier=1.0, hidden=512, dropout_rate=0.5),
    'vit': dict(patch_size=4, hidden_size=64, depth=4, num_heads=4, mlp_dim=128,
                dropout_rate=0.0, pooling='cls'),
    'gru': dict(hidden_size=6, bidirectional=True, num_layers=1, readout='all',
                dropout_rate=0.0, weight_init='flax'),
    'wavenet': dict(channels=32, skip_channels=32, kernel_size=2, num_blocks=2,
                    layers_per_block=6, downsample=1, pool='mean', dropout_rate=0.0),
    'gpt': dict(_TRANSFORMER),
    'bert': dict(_TRANSFORMER, head='mlm', pool='mean'),
    # Speech (research/models/deepspeech.py): features, conv front end, bidirectional GRUs,
    # SpecAugment masks (0: none) in training.
    'deepspeech': dict(features='logmel', num_mels=40, num_mfcc=13, window_ms=25.0, hop_ms=10.0,
                       conv_channels=32, time_stride=2, hidden_size=128, num_layers=2,
                       dropout_rate=0.0, freq_masks=0, freq_mask_width=8, time_masks=0,
                       time_mask_width=10),
}

OPTIMIZER = dict(name='adam', learning_rate=1e-3, momentum=0.0, nesterov=False, b1=0.9, b2=0.999,
                 weight_decay=0.0, schedule='constant', warmup_steps=0, grad_clip_norm=0.0,
                 state_dtype='float32',
                 # More keyword arguments of the optax optimizer `name` ('b2=0.98', ...): `name`
                 # may be any optax optimizer (lamb, lion, adafactor, ...; core/optim.py).
                 args=(),
                 # ('REGEX=FACTOR', ...): the learning rate of parameters whose '/'-joined path
                 # matches REGEX times FACTOR (the first matching rule wins).
                 group_lr=(),
                 # Regexes over '/'-joined parameter paths ('Dense_0/kernel') whose parameters
                 # are not trained (optax.set_to_zero); linear probing freezes all but the head.
                 freeze=())

# Read by some datasets only (token windows, audio clips, forecasting windows cut from a series:
# `context_length` past values in, the next `horizon` values out, a window every `stride` steps);
# not filled into other configs.
DATASET_FIELDS = dict(seq_len=128, audio_length=16000, context_length=12, horizon=3, stride=1)

TOP: dict[str, Any] = dict(
    seed=0,
    dataset=dict(name='digits', data_dir=Unset(str, '$TFDS_DATA_DIR or ~/tensorflow_datasets'),
                 manual_dir='', validation_fraction=0.1, download=False, shuffle='every_epoch',
                 # The share of the training split trained on: its first examples (a fixed,
                 # seed-independent subset; validation and test unchanged).
                 train_fraction=1.0,
                 # Where the splits live in training: 'device' (placed once, batches gathered
                 # inside the compiled program, many steps per dispatch: data/resident.py),
                 # 'host' (a grain iterator feeds each step), or 'auto': the device when the
                 # decoded splits fit device_budget_mb (one process, parallel='mesh').
                 placement='auto', device_budget_mb=1024),
    model=MLP,
    loss='cross_entropy',
    optimizer=OPTIMIZER,
    batch_size=64,
    eval_batch_size=Unset(int, 'the training batch size'),
    # `total_steps` (when set) takes precedence over `num_epochs`.
    num_epochs=Unset(float, 'from total_steps'),
    total_steps=Unset(int, 'from num_epochs'),
    eval_every=Unset(int, 'once per epoch'),
    checkpoint_every=Unset(int, 'at every evaluation'),
    keep_checkpoints=3,
    log_every=50,
    parallel='mesh',
    # Threads XLA:CPU runs the kernels on (0: one per core). Fewer can be faster for programs
    # of many tiny kernels, which it hands between its threads (research/devices/host_cpus.py);
    # set before JAX starts, results unchanged.
    cpu_threads=0,
    num_devices=Unset(int, 'every local device'),
    # Under parallel='mesh': the mesh's axis sizes (-1: the rest of the devices), the built-in
    # sharding rule set, and (regex over '/'-joined parameter paths, spec) rules before it.
    mesh=dict(data=-1, fsdp=1, tensor=1),
    sharding='data',
    sharding_rules=(),
    # Micro-batches per step (gradients summed, one update); training steps per compiled call.
    grad_accum_steps=1,
    steps_per_dispatch=1,
    task='classification',
    mask_rate=0.15,  # masked_lm: the share of non-pad tokens hidden per sequence.
    dtype='float32',  # 'bfloat16': mixed precision, float32 parameters and optimizer state.
    label_smoothing=0.0,
    # Training-batch augmentation, in order: 'op' or 'op:key=value,...' strings (the ops and
    # their parameters: research/core/augment.py); never applied at evaluation.
    augment=(),
    # Resize image inputs to (height, width) before the model, in training and evaluation alike
    # (e.g. MNIST's 28x28 to digits' 8x8 for transfer between the two).
    input_resize=Unset(tuple, 'the dataset\'s own shape'),
    # Transfer (run/transfer.py): 'WORKDIR[:STEP]' of a finished run whose parameters initialize
    # the matching paths (same path and shape; others keep their fresh initialization);
    # `init_batch_stats` also takes its BatchNorm statistics (optimizer.freeze and
    # optimizer.group_lr then choose what trains, and how fast).
    init_from=Unset(str, 'fresh initialization'),
    init_batch_stats=True,
    # Exponential moving average of the parameters, updated after every step (decay 0: off);
    # `evaluate`: evaluation (validation, test, `research eval`) uses the averaged parameters.
    ema=dict(decay=0.0, evaluate=True),
    skip_nonfinite=False,  # A NaN or Inf loss stops the run; True skips such steps.
    vectorize_mode='vmap',  # How a vectorized group runs its members: 'vmap' or 'unroll'.
    # Stop when the validation `metric` has not improved by `min_delta` for `patience`
    # evaluations in a row (patience 0: never); 'auto' minimizes losses, maximizes the rest.
    early_stopping=dict(metric='accuracy', patience=0, mode='auto', min_delta=0.0),
    progress='auto',
    progress_every_seconds=30.0,
    tensorboard=True,
    wandb=dict(enabled=False, project='research', entity=Unset(str), mode='online'),
    profile_steps=Unset(tuple, 'no profiling'),
)

# Reinforcement learning (research/run/agent.py): filled only into configs that have an `env`
# group, which is what makes a config an agent's (`config.rl_base()` starts one). A loop step is
# one compiled chunk of `dqn.rollout_length` vectorized environment steps (each of `env.num_envs`
# transitions) with its updates; the `dqn` intervals and budgets count environment transitions.
RL: dict[str, Any] = dict(
    env=dict(name=Unset(str, 'a gymnax environment id, e.g. CartPole-v1'), num_envs=10,
             eval_episodes=100),  # Greedy episodes per evaluation (fresh seeds each time).
    dqn=dict(rollout_length=100, replay_size=10_000, learning_starts=10_000, train_every=10,
             target_update_every=500, tau=1.0,  # 1.0: copy the online network; < 1: Polyak.
             gamma=0.99, double=False, huber_delta=1.0, epsilon_start=1.0, epsilon_end=0.05,
             epsilon_decay_steps=250_000,
             # A vectorized group's devices (research/run/agent.py): its seeds spread over this
             # many, each running its share (>= 2 seeds) at once; on a CPU host, that many
             # XLA:CPU devices, so that many cores. Results unchanged.
             group_devices=1),
)

CHOICES = {
    'parallel': ('mesh', 'pmap'),
    'dtype': ('float32', 'bfloat16'),
    'vectorize_mode': ('vmap', 'unroll'),
    'progress': ('auto', 'bar', 'lines', 'none'),
    'early_stopping.mode': ('auto', 'min', 'max'),
    'wandb.mode': ('online', 'offline', 'disabled'),
    'dataset.shuffle': ('every_epoch', 'once'),
    'dataset.placement': ('auto', 'device', 'host'),
}


def plain(value: Any) -> Any:
  """A default as config.json holds it: `Unset` reads None; a fresh copy of groups."""
  if isinstance(value, Unset):
    return None
  if isinstance(value, Mapping):
    return {k: plain(v) for k, v in value.items()}
  return copy.deepcopy(value)


def model_defaults(name: str) -> dict[str, Any] | None:
  """{'name': name, field: default, ...} of a model family; None for an unknown name."""
  if name not in MODELS:
    return None
  return {'name': name, **plain(MODELS[name])}


def complete(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
  """`values` (a plain dict) with every key of `defaults` it lacks, or holds as None where the
  default is not None, set to the default; keys `defaults` does not know are kept."""
  done = dict(values)
  for key, default in defaults.items():
    if done.get(key) is None and default is not None:
      done[key] = plain(default)
    elif key not in done:
      done[key] = plain(default)
  return done


def complete_model(model: Mapping[str, Any]) -> dict[str, Any]:
  """A model group with its family's defaults filled in (an unknown family: as given)."""
  defaults = MODELS.get(model.get('name'))
  return dict(model) if defaults is None else complete(defaults, model)


def rows() -> Iterator[tuple[str, Any]]:
  """(dotted key, default) for every key: the shared ones, then each model family's fields
  (`model[NAME].FIELD`), then the dataset fields some datasets read, then an agent's groups."""
  def walk(tree: Mapping, prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
      if isinstance(value, Mapping):
        yield from walk(value, f'{prefix}{key}.')
      else:
        yield f'{prefix}{key}', value
  yield from walk(TOP, '')
  for name, fields in MODELS.items():
    for key, value in fields.items():
      yield f'model[{name}].{key}', value
  for key, value in DATASET_FIELDS.items():
    yield f'dataset.{key}', value
  yield from walk(RL, '')
