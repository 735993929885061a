"""Replaces one generated section of a Markdown file, keeping the rest."""

import pathlib


def replace_section(path: str, marker: str, body: str) -> None:
  """Writes `body` between two `marker` lines of `path` (appended if absent)."""
  out = pathlib.Path(path)
  text = out.read_text() if out.exists() else '# Benchmarks\n'
  parts = text.split(marker)
  before, after = (parts[0], parts[2]) if len(parts) >= 3 else (text, '')
  out.write_text(f'{before.rstrip()}\n\n{marker}\n{body.strip()}\n{marker}\n'
                 f'{after.lstrip()}'.rstrip() + '\n')


def publish(path: str, marker: str, lines: list[str]) -> None:
  """Writes `lines` as the section `marker` of `path` (replace_section) and prints them."""
  text = '\n'.join(lines) + '\n'
  replace_section(path, marker, text)
  print(text)
