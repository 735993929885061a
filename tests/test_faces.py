"""Finding faces as a camera or a photo shows them: several per frame, at several scales,
positions and rolls, and photos that are a face crop already (edge.faces)."""

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from conftest import requires_real_data
from edge import faces


@pytest.fixture(scope='module')
def real_faces():
  """40 test faces of FER-2013 (48x48), of every class."""
  with zipfile.ZipFile(SHARED_DATA / 'fer2013.zip') as archive:
    names = sorted(n for n in archive.namelist() if n.startswith('test/'))[::170][:40]
    return [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert('L'))
            for n in names]


def paste(canvas, face, size, centre, degrees):
  """Pastes `face` scaled to `size` at `centre`, rotated `degrees` counter-clockwise."""
  x, y = centre[0] - size // 2, centre[1] - size // 2
  layer, mask = canvas.copy(), np.zeros_like(canvas)
  layer[y:y + size, x:x + size] = cv2.resize(face, (size, size),
                                             interpolation=cv2.INTER_CUBIC)
  mask[y:y + size, x:x + size] = 1
  turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
  rotated = cv2.warpAffine(layer, turn, canvas.shape[::-1])
  inside = cv2.warpAffine(mask, turn, canvas.shape[::-1]) > 0
  canvas[inside] = rotated[inside]


def found(boxes, centre, size):
  """The box whose centre lies within a third of the face's size of `centre`."""
  for box in boxes:
    cx, cy = box.centre
    if abs(cx - centre[0]) < size / 3 and abs(cy - centre[1]) < size / 3:
      return box
  return None


# Three faces a canvas: (size, centre, roll in degrees).
LAYOUT = [(70, (120, 140), 0), (110, (330, 250), 25), (150, (540, 320), -28)]


@requires_real_data
def test_several_faces_at_several_scales_and_rolls_are_found(real_faces):
  finder = faces.FaceFinder()
  single_pass = faces.FaceFinder.single_pass()
  hits = {'finder': [], 'single': []}
  rng = np.random.default_rng(0)
  for i in range(0, 36, 3):
    canvas = cv2.GaussianBlur(rng.integers(70, 150, (480, 640)).astype(np.uint8),
                              (41, 41), 0)
    for (size, centre, degrees), face in zip(LAYOUT, real_faces[i:i + 3]):
      paste(canvas, face, size, centre, degrees)
    for name, detector in (('finder', finder), ('single', single_pass)):
      boxes = detector.detect(canvas)
      for size, centre, degrees in LAYOUT:
        box = found(boxes, centre, size)
        hits[name].append(box is not None)
        if name == 'finder' and box is not None and degrees and box.roll:
          assert np.sign(box.roll) == -np.sign(degrees)  # turned back upright
  recall = {name: np.mean(h) for name, h in hits.items()}
  rolled = {name: np.mean([h for k, h in enumerate(v) if LAYOUT[k % 3][2]])
            for name, v in hits.items()}
  # FER-2013 holds profiles and occluded faces no frontal cascade finds: about a third
  # of the upright ones are missed by every pass. The retries find rolled faces the
  # single pass misses.
  assert recall['finder'] >= 0.65, recall
  assert rolled['finder'] >= rolled['single'] + 0.4, rolled


@requires_real_data
@pytest.mark.parametrize('side', [48, 64, 100, 200])
def test_a_photo_that_is_a_face_crop_is_found(real_faces, side):
  finder = faces.FaceFinder()
  for face in real_faces[:20]:
    crop = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    boxes = finder.detect(crop)
    assert boxes, f'no face in a {side} px face crop'
    assert boxes[0].found_by in ('haar', 'haar_padded', 'haar_rolled',
                                 'haar_rolled_padded', 'whole_image')


def test_a_large_frame_without_a_face_is_not_taken_for_one():
  frame = np.random.default_rng(1).integers(0, 256, (480, 640), np.uint8)
  frame = cv2.GaussianBlur(frame, (51, 51), 0)
  assert faces.FaceFinder().detect(frame) == []


def test_a_rolled_face_is_cut_out_upright():
  # A pattern that is not symmetric under rotation, rolled by 25 degrees.
  upright = np.zeros((200, 200), np.uint8)
  upright[60:140, 70:90] = 255
  upright[60:80, 90:140] = 255
  rolled = cv2.warpAffine(upright, cv2.getRotationMatrix2D((100, 100), 25, 1.0),
                          (200, 200))
  box = faces.Box(40, 40, 120, 120, roll=-25.0, found_by='haar_rolled')
  framing = {'scale': 1.0, 'dx': 0.0, 'dy': 0.0}
  straightened = faces.crop(rolled, box, framing).astype(np.float32)
  expected = upright[40:160, 40:160].astype(np.float32)
  as_rolled = rolled[40:160, 40:160].astype(np.float32)
  assert np.abs(straightened - expected).mean() < 0.3 * np.abs(as_rolled - expected).mean()


def test_framing_widens_and_moves_the_crop_as_fitted():
  gray = np.arange(400 * 400, dtype=np.uint32).reshape(400, 400) % 251
  gray = gray.astype(np.uint8)
  box = faces.Box(100, 100, 100, 100)
  cut = faces.crop(gray, box, {'scale': 1.2, 'dx': 0.0, 'dy': 0.1})
  assert cut.shape == (120, 120)
  # The crop's top-left corner: centre (150, 160), half side 60.
  np.testing.assert_array_equal(cut[10:20, 10:20], gray[110:120, 100:110])
