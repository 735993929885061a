"""Finding faces as a camera or a photo shows them (edge.faces, edge.blazeface): several
per frame, at several scales, positions and rolls, face-filling crops, no false faces in
noise, faces cut out level; the detector file checked."""

import io
import shutil
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import PORTRAIT
from conftest import SHARED_DATA
from conftest import requires_real_data
from edge import blazeface
from edge import faces



@pytest.fixture(scope='module')
def head():
  """Grace Hopper's head and shoulders, grayscale, 300x300, the face in its middle."""
  gray = cv2.cvtColor(cv2.imread(PORTRAIT), cv2.COLOR_BGR2GRAY)
  return gray[90:390, 116:416].copy()


@pytest.fixture(scope='module')
def finder():
  return faces.FaceFinder()


def paste(canvas, image, size, centre, degrees):
  """Pastes `image` scaled to `size` at `centre`, turned `degrees` counter-clockwise."""
  x, y = centre[0] - size // 2, centre[1] - size // 2
  layer, mask = canvas.copy(), np.zeros_like(canvas)
  layer[y:y + size, x:x + size] = cv2.resize(image, (size, size),
                                             interpolation=cv2.INTER_AREA)
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


def background(shape, seed=0):
  rng = np.random.default_rng(seed)
  return cv2.GaussianBlur(rng.integers(60, 170, shape).astype(np.uint8), (41, 41), 0)


# Heads a canvas of 760x560: (side in px, centre, roll in degrees); the face is about
# 0.6 of the head's side, so faces of about 48 to 300 px.
LAYOUT = [(80, (70, 70), 0), (130, (230, 110), 30), (200, (500, 150), -30),
          (480, (470, 300), 0)]


def test_several_faces_at_48_to_300_px_and_rolled_by_up_to_30_degrees_are_found(
    head, finder):
  canvas = background((560, 760))
  for size, centre, degrees in LAYOUT[:3]:
    paste(canvas, head, size, centre, degrees)
  boxes = finder.detect(canvas)
  for size, centre, degrees in LAYOUT[:3]:
    box = found(boxes, centre, size)
    assert box is not None, (size, degrees, boxes)
    assert box.found_by == 'blazeface'
    assert abs(box.roll + degrees) < 8, (box.roll, degrees)  # the roll that levels it
  assert len(boxes) == 3, boxes
  big = background((560, 760), seed=1)
  paste(big, head, *LAYOUT[3])
  assert found(finder.detect(big), LAYOUT[3][1], LAYOUT[3][0]) is not None


def test_a_face_that_fills_the_image_is_found(head, finder):
  face = head[40:250, 45:255]  # forehead to chin
  for side in (64, 150, 400):
    boxes = finder.detect(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA))
    assert boxes, side
    assert boxes[0].found_by in ('blazeface', 'whole_image')


@pytest.fixture(scope='module')
def real_faces():
  """20 test faces of FER-2013 (48x48), of every class."""
  with zipfile.ZipFile(SHARED_DATA / 'fer2013.zip') as archive:
    names = sorted(n for n in archive.namelist() if n.startswith('test/'))[::340][:20]
    return [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert('L'))
            for n in names]


@requires_real_data
@pytest.mark.parametrize('side', [48, 100, 300])
def test_a_photo_that_is_a_dataset_face_crop_is_found(real_faces, finder, side):
  for face in real_faces:
    boxes = finder.detect(cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC))
    assert boxes, f'no face in a {side} px face crop'


def test_blurred_noise_and_blank_frames_give_no_face(finder):
  video = faces.VideoFaceFinder()
  for value in (0, 128, 255):
    blank = np.full((480, 640), value, np.uint8)
    assert finder.detect(blank) == [] and video.detect(blank) == []
  # A neural detector now and then sees a face in noise; the second look and its
  # mirror image keep that to about one frame in a hundred.
  with_a_face = 0
  for sigma in (2, 3, 5, 8):
    for seed in range(10):
      noise = np.random.default_rng(seed).integers(0, 256, (480, 640), np.uint8)
      with_a_face += bool(finder.detect(cv2.GaussianBlur(noise, (0, 0), sigma)))
  assert with_a_face <= 1


def test_a_rolled_face_comes_out_level(head, finder):
  upright = background((480, 640))
  paste(upright, head, 260, (320, 240), 0)
  (level,) = finder.detect(upright)  # the portrait's own tilt, a few degrees
  canvas = background((480, 640))
  paste(canvas, head, 260, (320, 240), 25)
  (box,) = finder.detect(canvas)
  assert box.roll - level.roll == pytest.approx(-25, abs=4)
  # The eyes of the cut-out face, found again, are level.
  crop = faces.crop(canvas, box)
  (again,) = faces.FaceFinder.single_pass().detections(
      cv2.copyMakeBorder(crop, 60, 60, 60, 60, cv2.BORDER_REPLICATE))
  assert abs(faces.roll_of(again.keypoints)) < 5
  # Unlevelled, the same square shows the eyes at the roll.
  unlevelled = faces.crop(canvas, faces.Box(box.x, box.y, box.width, box.height))
  (tilted,) = faces.FaceFinder.single_pass().detections(
      cv2.copyMakeBorder(unlevelled, 60, 60, 60, 60, cv2.BORDER_REPLICATE))
  assert abs(faces.roll_of(tilted.keypoints)) > 15


def test_the_crop_is_the_square_the_framing_makes():
  detection = blazeface.Detection((100.0, 100.0, 100.0, 100.0), np.zeros((6, 2)), 0.9)
  box = faces.frame(detection, 0.0, {'scale': 1.2, 'dx': 0.0, 'dy': -0.1}, 'blazeface')
  assert (box.x, box.y, box.width) == pytest.approx((90, 80, 120))
  gray = (np.arange(400 * 400).reshape(400, 400) % 251).astype(np.uint8)
  cut = faces.crop(gray, box)
  assert cut.shape == (120, 120)
  np.testing.assert_array_equal(cut[10:20, 10:20], gray[90:100, 100:110])
  # Turned: the offset turns with the face (levelled by turning it 90 degrees
  # counter-clockwise, its top points right).
  turned = faces.frame(detection, 90.0, {'scale': 1.0, 'dx': 0.0, 'dy': -0.1}, 'blazeface')
  assert turned.centre == pytest.approx((160, 150))


def test_a_detector_file_with_another_checksum_is_refused(tmp_path):
  original = faces.FaceFinder().detector  # loads: the shipped file is the right one
  assert original.spec is blazeface.SHORT_RANGE
  damaged = tmp_path / blazeface.SHORT_RANGE.file
  shutil.copy(blazeface.model_files.find(blazeface.FOLDER) / blazeface.SHORT_RANGE.file,
              damaged)
  data = bytearray(damaged.read_bytes())
  data[len(data) // 2] ^= 0xFF
  damaged.write_bytes(bytes(data))
  with pytest.raises(blazeface.DetectorError, match='SHA-256'):
    blazeface.BlazeFace(path=damaged)
  with pytest.raises(blazeface.DetectorError, match='not found'):
    blazeface.BlazeFace(path=tmp_path / 'missing.tflite')


def test_the_shipped_detector_files_are_the_ones_documented():
  folder = blazeface.model_files.find(blazeface.FOLDER)
  readme = (folder / 'README.md').read_text()
  for spec in (blazeface.SHORT_RANGE, blazeface.FULL_RANGE):
    assert blazeface.contract.sha256(folder / spec.file) == spec.sha256
    assert spec.sha256 in readme
  assert 'Apache License' in (folder / 'LICENSE').read_text()
  assert (folder / 'NOTICE').is_file()
