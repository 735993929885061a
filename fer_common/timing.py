"""Wall-clock timing of one call, shared by `edge bench` and the exporter's report."""

import time
from collections.abc import Callable


def call_times_ms(function: Callable[[], object], runs: int, warmup: int) -> list[float]:
  """Milliseconds of each of `runs` calls of `function`, after `warmup` untimed calls."""
  for _ in range(warmup):
    function()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    function()
    times.append((time.perf_counter() - start) * 1000)
  return times
