"""fer_emotions: FER-2013 (+ CK+48) faces, merged and re-split 70/15/15 per class and source.

This module is the one place where class names, their order and the mapping from each
archive's folders to them are written; the trainer reads them back from
`info.features['label'].names` and the exporter writes them into `model.json`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Mapping

from absl import logging
import numpy as np
import tensorflow_datasets as tfds
import tqdm

from fer_common import contract
from fer_tfds.fer_emotions import archives
from fer_tfds.fer_emotions import splits

FER2013 = archives.ArchiveSpec(
    source='fer2013',
    zip_name='fer2013.zip',
    folder_name='fer2013',
    top_folders=('train', 'test'),
    class_folders=('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'),
    kaggle_url='https://www.kaggle.com/datasets/msambare/fer2013',
)
CKPLUS = archives.ArchiveSpec(
    source='ckplus',
    zip_name='ckplus.zip',
    folder_name='ckplus',
    top_folders=('CK+48',),
    class_folders=(
        'anger', 'contempt', 'disgust', 'fear', 'happy', 'sadness', 'surprise'
    ),
    kaggle_url='https://www.kaggle.com/datasets/shuvoalok/ck-dataset',
)
SOURCES = (FER2013.source, CKPLUS.source)

# Archive class folder -> dataset label. Folders missing here (CK+ contempt) are dropped.
FOLDER_TO_LABEL = {
    FER2013.source: {
        'angry': 'angry', 'disgust': 'disgust', 'fear': 'fearful', 'happy': 'happy',
        'neutral': 'neutral', 'sad': 'sad', 'surprise': 'surprise',
    },
    CKPLUS.source: {
        'anger': 'angry', 'disgust': 'disgust', 'fear': 'fearful', 'happy': 'happy',
        'sadness': 'sad', 'surprise': 'surprise',
    },
}
FIVE_CLASSES = ('angry', 'fearful', 'happy', 'neutral', 'sad')
SEVEN_CLASSES = ('angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad', 'surprise')
SPLIT_SEED = 2013

_DESCRIPTION = """
FER-2013 48x48 grayscale faces, its Kaggle train and test folders merged and re-split
70/15/15 per class (floor for train and validation, the rest to test) by a seeded rule over
sorted file names, optionally with the CK+48 faces of the same classes split the same way.
Each example keeps its source archive and original file name.
"""

_CITATION = """
@inproceedings{goodfellow2013fer,
  title={Challenges in Representation Learning: A report on three machine learning contests},
  author={Goodfellow, Ian J. and others},
  booktitle={ICONIP}, year={2013}}
@inproceedings{lucey2010ckplus,
  title={The Extended Cohn-Kanade Dataset (CK+)},
  author={Lucey, Patrick and others},
  booktitle={CVPR Workshops}, year={2010}}
"""


@dataclasses.dataclass
class FerConfig(tfds.core.BuilderConfig):
  """Which classes and archives a config uses.

  Attributes:
    class_names: label names in output order.
    sources: archives to read, a subset of SOURCES.
    drop_cross_split_duplicates: drop an image from validation/test when the very same
      pixels are already in an earlier split (train < validation < test).
  """

  class_names: tuple[str, ...] = FIVE_CLASSES
  sources: tuple[str, ...] = SOURCES
  drop_cross_split_duplicates: bool = False


@dataclasses.dataclass(frozen=True)
class _Face:
  source: str
  path: str
  label: str
  pixels: np.ndarray

  @property
  def key(self) -> str:
    return f'{self.source}/{self.path}'


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for fer_emotions."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Download both Kaggle archives and place them in the manual dir (by default
  ~/tensorflow_datasets/downloads/manual/, or pass --manual_dir):
    * {FER2013.kaggle_url} -> {FER2013.zip_name}
      (train/<class>/*.jpg and test/<class>/*.jpg)
    * {CKPLUS.kaggle_url} -> {CKPLUS.zip_name}
      (CK+48/<class>/*.png)
  Either the zip or its extracted folder ({FER2013.folder_name}/, {CKPLUS.folder_name}/)
  works. The `fer5` config needs only {FER2013.zip_name}.
  """
  BUILDER_CONFIGS = [
      FerConfig(
          name='fer5_ck',
          description='5 classes (the study): FER-2013 train+test merged, plus CK+48 '
          'anger/fear/happy/sadness.',
      ),
      FerConfig(
          name='fer5',
          description='5 classes, FER-2013 only.',
          sources=(FER2013.source,),
      ),
      FerConfig(
          name='fer7_ck',
          description='All 7 FER-2013 classes plus CK+48 (contempt dropped).',
          class_names=SEVEN_CLASSES,
      ),
      FerConfig(
          name='fer5_ck_dedup',
          description='fer5_ck without validation/test images whose exact pixels '
          'are already in an earlier split.',
          drop_cross_split_duplicates=True,
      ),
  ]
  DEFAULT_CONFIG_NAME = contract.DEFAULT_CONFIG

  def __init__(self, *, skip_corrupt_images: bool = False, **kwargs):
    """Creates the builder.

    Args:
      skip_corrupt_images: skip (and count) images that do not decode as 48x48 instead
        of failing the build on the first one.
      **kwargs: passed to `tfds.core.GeneratorBasedBuilder`.
    """
    super().__init__(**kwargs)
    self._skip_corrupt_images = skip_corrupt_images

  def archives_needed(self) -> list[archives.ArchiveSpec]:
    """The archives the builder's config reads."""
    return [spec for spec in (FER2013, CKPLUS) if spec.source in self.builder_config.sources]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=contract.IMAGE_SHAPE,
                encoding_format='png',
            ),
            'label': tfds.features.ClassLabel(names=self.builder_config.class_names),
            'source': tfds.features.ClassLabel(names=SOURCES),
            'file_name': tfds.features.Text(),
        }),
        supervised_keys=('image', 'label'),
        homepage=FER2013.kaggle_url,
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    faces = self._read_faces(dl_manager.manual_dir)
    assignment = splits.assign(
        (((face.source, face.label), face.key) for face in faces), seed=SPLIT_SEED
    )
    duplicates = _cross_split_duplicates(faces, assignment)
    self.info.metadata['cross_split_duplicates'] = len(duplicates)
    logging.info('%d images duplicate an image of an earlier split.', len(duplicates))
    if self.builder_config.drop_cross_split_duplicates:
      faces = [face for face in faces if face.key not in duplicates]
    by_split = collections.defaultdict(list)
    for face in faces:
      by_split[assignment[face.key]].append(face)
    return {name: self._generate_examples(by_split[name]) for name in splits.SPLITS}

  def _generate_examples(self, faces: list[_Face]):
    for face in faces:
      yield face.key, {
          'image': face.pixels,
          'label': face.label,
          'source': face.source,
          'file_name': face.key,
      }

  def _read_faces(self, manual_dir) -> list[_Face]:
    """Decodes every image of the config's classes from the configured archives."""
    config = self.builder_config
    faces, corrupt = [], []
    for spec in self.archives_needed():
      folder_to_label = {
          folder: label
          for folder, label in FOLDER_TO_LABEL[spec.source].items()
          if label in config.class_names
      }
      archive = archives.locate(manual_dir, spec)
      files = [
          f for f in archives.read_files(archive, spec) if f.class_folder in folder_to_label
      ]
      for file in tqdm.tqdm(files, desc=f'Decoding {archive.name}', unit=' images'):
        try:
          pixels = archives.decode(file)
        except archives.CorruptImageError as e:
          if not self._skip_corrupt_images:
            raise archives.CorruptImageError(
                f'{e} Fix or remove the file, or build with skip_corrupt_images=True '
                '(python -m fer_tfds.build --skip_corrupt_images).'
            ) from e
          corrupt.append(file.path)
          continue
        faces.append(_Face(spec.source, file.path, folder_to_label[file.class_folder], pixels))
    if corrupt:
      logging.warning('Skipped %d corrupt images: %s', len(corrupt), ', '.join(corrupt[:20]))
    self.info.metadata['skipped_corrupt_images'] = len(corrupt)
    return faces


def _cross_split_duplicates(faces: list[_Face], assignment: Mapping[str, str]) -> set[str]:
  """Keys of images whose exact pixels already occur in an earlier split."""
  order = {name: i for i, name in enumerate(splits.SPLITS)}
  digests = {face.key: hashlib.sha1(face.pixels.tobytes()).digest() for face in faces}
  earliest = {}
  for key, digest in digests.items():
    rank = order[assignment[key]]
    earliest[digest] = min(rank, earliest.get(digest, rank))
  return {
      key for key, digest in digests.items() if order[assignment[key]] > earliest[digest]
  }
