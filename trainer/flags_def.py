"""Every command-line flag of the trainer (`python -m trainer --help` lists them).

The defaults are our recommended recipe, the one `configs/fernet.cfg` spells out: FERNet
at the study's widths with 3x3 kernels, AdamW with warm-up and cosine decay over 40
epochs, label smoothing, mild augmentation and light dropout.
"""

from absl import flags

from fer_common import contract

PRECISIONS = ('auto', 'float32', 'mixed_float16', 'mixed_bfloat16')
DISTRIBUTIONS = ('auto', 'one_device', 'mirrored', 'multi_worker')


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the trainer's flags in `flag_values` (the global FLAGS: once per process)."""
  kw = {'flag_values': flag_values}
  positive = {'lower_bound': 1, **kw}
  fraction = {'lower_bound': 0.0, 'upper_bound': 1.0, **kw}
  # Data.
  flags.DEFINE_enum('dataset', contract.DEFAULT_CONFIG, list(contract.DATASET_CONFIGS),
                    f'{contract.DATASET} config to train on.', **kw)
  flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: $TFDS_DATA_DIR or '
                      '~/tensorflow_datasets).', **kw)
  flags.DEFINE_string('run_dir', None, 'Output folder: flags, checkpoints, models, '
                      'reports. Running the same command again resumes it.', required=True, **kw)
  flags.DEFINE_enum('train_split', 'train', list(contract.TRAIN_SPLITS),
                    'What to train on. train+validation refits on both once the choices '
                    'the validation split guided are made: its validation metrics are '
                    'then not held out, so the last epoch is kept, not the best.', **kw)
  flags.DEFINE_integer('shuffle_buffer', 25_000, 'Shuffle buffer (>= train size: '
                       'a full shuffle).', **positive)
  flags.DEFINE_integer('seed', 42, 'Seed of shuffling, augmentation and initialisation.',
                       lower_bound=0, **kw)
  # Model.
  flags.DEFINE_list('filters', ['32', '64', '128', '256', '512'],
                    'Conv filters of each FERNet block (2 convs per block).', **kw)
  flags.DEFINE_integer('kernel_size', 3, 'Conv kernel size (the study: 4).', **positive)
  flags.DEFINE_float('dropout', 0.1, 'Dropout after each block.', lower_bound=0.0,
                     upper_bound=0.95, **kw)
  flags.DEFINE_float('head_dropout', 0.3, 'Dropout before the softmax layer.',
                     lower_bound=0.0, upper_bound=0.95, **kw)
  flags.DEFINE_string('init_from', None, 'A finished run dir whose FERNet (same '
                      '--filters, --kernel_size and classes) starts training instead of '
                      'Glorot initialisation: fine-tuning; default: none.', **kw)
  # Optimisation.
  flags.DEFINE_enum('optimizer', 'adamw', ['adam', 'adamw', 'sgd'],
                    'Optimiser; sgd uses Nesterov momentum (--momentum).', **kw)
  flags.DEFINE_float('momentum', 0.9, 'Nesterov momentum of --optimizer=sgd.',
                     lower_bound=0.0, upper_bound=1.0, **kw)
  flags.DEFINE_float('learning_rate', 2e-3, 'Learning rate (the peak with a schedule).',
                     lower_bound=0.0, **kw)
  flags.DEFINE_float('weight_decay', 0.01, 'Decoupled weight decay of the optimiser '
                     '(BatchNorm and bias excluded); 0 disables.', **fraction)
  flags.DEFINE_enum('lr_schedule', 'cosine', ['constant', 'cosine'],
                    'constant (with --reduce_lr_patience) or cosine decay with warm-up.', **kw)
  flags.DEFINE_float('warmup_epochs', 1.0, 'Linear warm-up with --lr_schedule=cosine.',
                     lower_bound=0.0, **kw)
  flags.DEFINE_float('label_smoothing', 0.1, 'Label smoothing of the cross-entropy.',
                     **fraction)
  flags.DEFINE_integer('batch_size', 64, 'Global batch size.', **positive)
  flags.DEFINE_integer('epochs', 40, 'Maximum epochs.', **positive)
  flags.DEFINE_integer('members_at_once', 1, 'FERNets trained at once in one program, each with '
                       'its own initialisation and augmentation seed, on the same batches '
                       '(trainer.array_fit; trainer/members.py).', **positive)
  flags.DEFINE_integer('steps_per_epoch', None, 'Limit steps per epoch (smoke runs); '
                       'default: one pass over the train split.', **positive)
  flags.DEFINE_integer('steps_per_execution', 1, 'Training steps per compiled call '
                       '(Keras compile()); more keeps a fast accelerator from waiting for '
                       'the host between steps. Per-batch callbacks see every Nth batch.',
                       **positive)
  flags.DEFINE_integer('eval_limit', None, 'Use only this many examples of each split '
                       'for validation and reports (smoke runs); default: all.', **positive)
  # Callbacks.
  flags.DEFINE_integer('reduce_lr_patience', 0, 'ReduceLROnPlateau patience in epochs '
                       'on val_accuracy; 0 disables.', lower_bound=0, **kw)
  flags.DEFINE_float('reduce_lr_factor', 0.1, 'ReduceLROnPlateau factor.',
                     lower_bound=1e-6, upper_bound=0.999, **kw)
  flags.DEFINE_float('min_learning_rate', 1e-6, 'ReduceLROnPlateau floor.',
                     lower_bound=0.0, **kw)
  flags.DEFINE_integer('early_stopping_patience', 0, 'EarlyStopping patience on '
                       'val_accuracy (restores the best weights); 0 disables.',
                       lower_bound=0, **kw)
  # Augmentation (Keras preprocessing layers, training only).
  flags.DEFINE_float('rotation', 10.0, 'RandomRotation: max degrees either way.',
                     lower_bound=0.0, upper_bound=180.0, **kw)
  flags.DEFINE_list('brightness', ['-0.1', '0.1'], 'RandomBrightness delta range lo,hi '
                    'as a fraction of the value range, e.g. -0.2,0.2; 0,0 disables.', **kw)
  flags.DEFINE_float('zoom', 0.1, 'RandomZoom: max fraction in or out.', lower_bound=0.0,
                     upper_bound=0.9, **kw)
  flags.DEFINE_bool('flip', True, 'RandomFlip horizontal.', **kw)
  flags.DEFINE_float('shift', 0.1, 'RandomTranslation: max fraction of width/height.',
                     lower_bound=0.0, upper_bound=0.9, **kw)
  flags.DEFINE_float('erasing', 0.0, 'RandomErasing: probability of blanking a random '
                     'rectangle of 2-33 % of the image with noise; 0 disables.', **fraction)
  flags.DEFINE_float('blur', 0.0, 'RandomGaussianBlur: largest sigma in pixels, drawn '
                     'per image from [0, blur]; 0 disables.', lower_bound=0.0,
                     upper_bound=5.0, **kw)
  flags.DEFINE_float('contrast', 0.0, 'RandomContrast: contrast factor drawn from '
                     '[1 - c, 1 + c]; 0 disables.', **fraction)
  flags.DEFINE_float('noise', 0.0, 'GaussianNoise: standard deviation of added pixel '
                     'noise as a fraction of the value range; 0 disables.',
                     lower_bound=0.0, upper_bound=0.5, **kw)
  flags.DEFINE_float('gamma', 0.0, 'RandomGamma: gamma drawn log-uniformly from '
                     '[1/(1+g), 1+g]; 0 disables.', lower_bound=0.0, upper_bound=2.0, **kw)
  flags.DEFINE_integer('jpeg_quality', 0, 'RandomJpegQuality: JPEG compression at a '
                       'quality drawn from [q, 100]; 0 disables.', lower_bound=0,
                       upper_bound=100, **kw)
  flags.DEFINE_bool('balance_classes', False, 'Weight each training example by the '
                    'inverse of its class\'s share of the train split (Keras '
                    'class_weight), so rare classes (angry, fearful) count as much as '
                    'happy.', **kw)
  flags.DEFINE_float('mixup', 0.0, 'MixUp alpha: blend each training image and its '
                     'label with another of the batch (in the tf.data map); 0 disables.',
                     lower_bound=0.0, **kw)
  # Distillation.
  flags.DEFINE_string('teacher', None, 'A finished run or ensemble dir (same dataset) '
                      'whose probabilities on the train split become part of the '
                      'training targets (knowledge distillation); default: none.', **kw)
  flags.DEFINE_float('teacher_weight', 0.5, 'With --teacher: targets are this share of '
                     'the teacher\'s probabilities plus the rest of the one-hot label.',
                     **fraction)
  flags.DEFINE_enum('augment_on', 'model', ['model', 'dataset'],
                    'Where augmentation runs: inside the training model (on the '
                    'accelerator) or in the tf.data map after batch().', **kw)
  # Devices.
  flags.DEFINE_enum('precision', 'auto', list(PRECISIONS),
                    'auto: mixed_bfloat16 on a GPU, float32 on a CPU (measured fastest '
                    'there, see BENCHMARKS.md).', **kw)
  flags.DEFINE_enum('distribution', 'auto', list(DISTRIBUTIONS),
                    'auto: multi_worker if TF_CONFIG is set, mirrored with several GPUs, '
                    'else one_device.', **kw)


def default_values() -> dict[str, str]:
  """The flags' defaults as a run's flags.txt spells them ({name: value}; flags without a
  default absent): a run dir written before a flag existed trained with its default."""
  values = flags.FlagValues()
  define_flags(values)
  values.mark_as_parsed()  # defaults only: parsing would demand the required --run_dir
  return contract.parse_flag_lines(values[name].serialize() for name in values)
