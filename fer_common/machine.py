"""What this machine is, for reports whose numbers depend on it (no TensorFlow)."""

import os
import pathlib
import platform
import re

# CPU flags (as /proc/cpuinfo spells them) that change how fast FERNet trains or runs.
# int8 dot products (x86 VNNI, AMX; ARM's dot product, which a Raspberry Pi 5's Cortex-A76
# has and a Pi 4's lacks) make int8 outrun float32; bfloat16 ones make mixed_bfloat16 pay.
INT8_DOT_PRODUCT_FLAGS = ('avx_vnni', 'avx512_vnni', 'amx_int8', 'asimddp')
BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')
_VECTOR_FLAGS = ('avx2', 'avx512f', 'neon', 'asimd')


def _cpuinfo() -> str | None:
  try:
    return pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    return None


def _flags_in(cpuinfo: str | None, wanted: tuple[str, ...]) -> str:
  if cpuinfo is None:
    return 'unknown'
  return ', '.join(sorted(set(wanted) & set(cpuinfo.split()))) or 'none'


def cpu_flags(wanted: tuple[str, ...]) -> str:
  """Those of `wanted` this CPU has, comma-separated; 'none'; or 'unknown' where
  /proc/cpuinfo is absent (not Linux)."""
  return _flags_in(_cpuinfo(), wanted)


def describe() -> str:
  """CPU model, core count and its vector / int8 / bfloat16 instruction flags, e.g.
  'AMD EPYC, 2 cores (avx2, avx512f, avx512_bf16, avx512_vnni)'."""
  cpuinfo = _cpuinfo()
  name = platform.processor() or platform.machine()
  match = re.search(r'model name\s*:\s*(.*)', cpuinfo or '')
  if match:
    name = match.group(1).strip()
  flags = _flags_in(cpuinfo, _VECTOR_FLAGS + INT8_DOT_PRODUCT_FLAGS + BFLOAT16_FLAGS)
  return f'{name}, {os.cpu_count()} cores ({flags})'
