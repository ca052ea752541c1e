"""TFDS builder `diabetes`: scikit-learn's diabetes regression data (442 patients), offline.

Ten baseline variables (age, sex, BMI, blood pressure and six blood serum measurements) as
scikit-learn ships them, each mean-centred and scaled to unit Euclidean norm (float32
`features` [10]); the target is a quantitative measure of disease progression one year after
baseline (float32 `target`, 25..346). There is no official split: `test` is the fixed seeded 20%
holdout of local_builder (89 patients), `train` the other 353, from which the pipeline carves
validation (`dataset.validation_fraction`) off the end.
"""
import numpy as np
import tensorflow_datasets as tfds

from research.data import local_builder


class Diabetes(local_builder.LocalBuilder):
  """sklearn.datasets.load_diabetes with a fixed 80/20 train/test holdout."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: 353 train / 89 test.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description='Efron et al. (2004) diabetes data as scikit-learn ships it.',
        features=tfds.features.FeaturesDict({
            'features': tfds.features.Tensor(shape=(10,), dtype=np.float32),
            'target': tfds.features.Scalar(dtype=np.float32),
        }),
        supervised_keys=('features', 'target'),
        homepage='https://www4.stat.ncsu.edu/~boos/var.select/diabetes.html')

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    features, target = datasets.load_diabetes(return_X_y=True)
    train, test = local_builder.holdout_split(len(target))
    return {'train': self._rows(features, target, train),
            'test': self._rows(features, target, test)}

  def _rows(self, features, target, indices):
    for i in indices:
      yield int(i), {'features': features[i].astype(np.float32), 'target': np.float32(target[i])}
