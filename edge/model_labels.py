"""The class labels inside a .tflite file: a TFLite metadata entry (contract.LABELS_METADATA)
holding the JSON list, in output order, written at export. The edge runner compares it
with model.json's labels, so that a sidecar edited or mixed up by hand is refused rather
than believed. Only LiteRT's own flatbuffer schema is needed (no TensorFlow)."""

from __future__ import annotations

import json
import pathlib

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from fer_common import contract


def read(path: str | pathlib.Path) -> tuple[str, ...] | None:
  """The labels recorded inside the .tflite at `path`; None if it records none (a model
  exported before labels travelled inside it)."""
  model = schema.Model.GetRootAs(pathlib.Path(path).read_bytes(), 0)
  for i in range(model.MetadataLength()):
    entry = model.Metadata(i)
    if entry.Name() == contract.LABELS_METADATA.encode():
      data = model.Buffers(entry.Buffer()).DataAsNumpy()
      return tuple(json.loads(bytes(data).decode()))
  return None


def embedded(tflite: bytes, labels: list[str] | tuple[str, ...]) -> bytes:
  """`tflite` with `labels` recorded inside it (replacing labels recorded before)."""
  model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
  model.metadata = [m for m in (model.metadata or [])
                    if m.name not in (contract.LABELS_METADATA,
                                      contract.LABELS_METADATA.encode())]
  buffer = schema.BufferT()
  buffer.data = list(json.dumps(list(labels)).encode())
  entry = schema.MetadataT()
  entry.name, entry.buffer = contract.LABELS_METADATA, len(model.buffers)
  model.buffers.append(buffer)
  model.metadata.append(entry)
  builder = flatbuffers.Builder(len(tflite) + 1024)
  builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
  return bytes(builder.Output())
