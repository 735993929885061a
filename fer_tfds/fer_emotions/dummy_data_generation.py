"""Writes tiny fake FER-2013 and CK+48 archives in the Kaggle layout.

`python -m fer_tfds.fer_emotions.dummy_data_generation` regenerates `dummy_data/` (the
extracted-folder form that `DatasetBuilderTestCase` reads); tests call `write_archives`
to make zip or folder fixtures of their own.
"""

from __future__ import annotations

import io
import zipfile

from absl import app
from etils import epath
import numpy as np
from PIL import Image

from fer_tfds.fer_emotions import fer_emotions_dataset_builder as fer

# Images per FER-2013 class folder (train, test) and per CK+48 class folder.
FER_PER_CLASS = (6, 4)
CKPLUS_PER_CLASS = 7


def fake_face(rng: np.random.Generator, brightness: float = 255.0,
              size: int = 48) -> np.ndarray:
  """A random 48x48 uint8 grayscale image: a blurred blob on noise, face-sized.

  `brightness` is the blob's peak; giving each class its own makes the fake data
  learnable, so a model trained on it for a few steps predicts more than one class.
  """
  yy, xx = np.mgrid[:size, :size]
  centre = rng.uniform(16, 32, size=2)
  blob = brightness * np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 200.0)
  return np.clip(blob + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)


def class_brightness(source: str, folder: str) -> float:
  """The blob brightness of a class folder: 60 for the first label up to 240 for the last."""
  label = fer.FOLDER_TO_LABEL[source].get(folder, fer.SEVEN_CLASSES[0])
  return 60.0 + 180.0 * fer.SEVEN_CLASSES.index(label) / (len(fer.SEVEN_CLASSES) - 1)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
  """Encodes a 2-D uint8 array as JPEG or PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(pixels, mode='L').save(buffer, format=fmt)
  return buffer.getvalue()


def archive_contents(seed: int = 0) -> dict[str, dict[str, bytes]]:
  """Returns {archive stem: {path inside archive: encoded image}} for both archives."""
  rng = np.random.default_rng(seed)
  fer2013 = {}
  for folder in fer.FER2013.class_folders:
    brightness = class_brightness(fer.FER2013.source, folder)
    for top, n in zip(fer.FER2013.top_folders, FER_PER_CLASS):
      prefix = 'Training' if top == 'train' else 'PublicTest'
      for i in range(n):
        fer2013[f'{top}/{folder}/{prefix}_{i:05d}.jpg'] = encode(
            fake_face(rng, brightness), 'JPEG')
  ckplus = {
      f'CK+48/{folder}/S{i:03d}_001_00000001.png': encode(
          fake_face(rng, class_brightness(fer.CKPLUS.source, folder)), 'PNG')
      for folder in fer.CKPLUS.class_folders
      for i in range(CKPLUS_PER_CLASS)
  }
  return {fer.FER2013.folder_name: fer2013, fer.CKPLUS.folder_name: ckplus}


def write_archives(root: epath.PathLike, form: str = 'zip',
                   contents: dict[str, dict[str, bytes]] | None = None) -> epath.Path:
  """Writes both fake archives into `root` as `<stem>.zip` or `<stem>/` folders.

  Args:
    root: the manual dir to write into (created if missing).
    form: 'zip' or 'folder'.
    contents: what `archive_contents` returns (default: `archive_contents()`), so a test
      can add, corrupt or remove files first.
  """
  root = epath.Path(root)
  root.mkdir(parents=True, exist_ok=True)
  for stem, files in (contents or archive_contents()).items():
    if form == 'zip':
      with zipfile.ZipFile(root / f'{stem}.zip', 'w') as zf:
        for path, data in files.items():
          zf.writestr(path, data)
    else:
      for path, data in files.items():
        (root / stem / path).parent.mkdir(parents=True, exist_ok=True)
        (root / stem / path).write_bytes(data)
  return root


def main(argv):
  del argv
  write_archives(epath.Path(__file__).parent / 'dummy_data', form='folder')


if __name__ == '__main__':
  app.run(main)
