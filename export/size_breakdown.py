"""Where the bytes of a .tflite file go: tensor data (weights and biases), quantisation
parameters (per-channel scales and zero points) and the rest (graph, names, signatures);
and how many multiply-accumulates one inference does.

It explains the int8 size target: int8 weights are exactly a quarter of float32 ones,
but every per-channel quantised tensor also stores a float32 scale and an int64 zero
point per output channel, and biases stay 32-bit.
"""

import pathlib

from ai_edge_litert import schema_py_generated as schema

_SCALE_BYTES, _ZERO_POINT_BYTES, _MIN_MAX_BYTES = 4, 8, 4


def _buffer_bytes(buffer) -> int:
  # Models over 2 GB keep tensor data after the flatbuffer (offset/size) instead of inline.
  return buffer.DataLength() or buffer.Size()


def size_breakdown(path: pathlib.Path) -> dict[str, int]:
  """{'file', 'tensor_data', 'quantisation_params', 'other'} in bytes for one .tflite."""
  data = pathlib.Path(path).read_bytes()
  model = schema.Model.GetRootAs(data, 0)
  tensor_data = sum(_buffer_bytes(model.Buffers(i)) for i in range(model.BuffersLength()))
  quantisation = 0
  for s in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(s)
    for t in range(subgraph.TensorsLength()):
      q = subgraph.Tensors(t).Quantization()
      if q is not None:
        quantisation += (q.ScaleLength() * _SCALE_BYTES
                         + q.ZeroPointLength() * _ZERO_POINT_BYTES
                         + (q.MinLength() + q.MaxLength()) * _MIN_MAX_BYTES)
  return {'file': len(data), 'tensor_data': tensor_data,
          'quantisation_params': quantisation,
          'other': len(data) - tensor_data - quantisation}


def _opcode(model, op) -> int:
  code = model.OperatorCodes(op.OpcodeIndex())
  return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def macs(path: pathlib.Path) -> int:
  """Multiply-accumulates of one inference: every convolution and fully connected layer
  of the graph (output pixels x output channels x kernel size x input channels)."""
  model = schema.Model.GetRootAs(pathlib.Path(path).read_bytes(), 0)
  ops = schema.BuiltinOperator
  total = 0
  for s in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(s)
    for o in range(subgraph.OperatorsLength()):
      op = subgraph.Operators(o)
      code = _opcode(model, op)
      if code not in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.FULLY_CONNECTED):
        continue
      weights = subgraph.Tensors(op.Inputs(1)).ShapeAsNumpy()
      output = subgraph.Tensors(op.Outputs(0)).ShapeAsNumpy()
      if code == ops.FULLY_CONNECTED:
        total += int(weights[0]) * int(weights[1])
      elif code == ops.CONV_2D:  # weights (out, kh, kw, in); output (1, h, w, out)
        total += int(output[1] * output[2] * weights[0] * weights[1] * weights[2]
                     * weights[3])
      else:  # depthwise: weights (1, kh, kw, channels)
        total += int(output[1] * output[2] * weights[1] * weights[2] * weights[3])
  return total
