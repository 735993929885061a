"""Entry point: python -m edge {classify,video,bench} ..."""

import sys

from edge import cli

if __name__ == '__main__':
  sys.exit(cli.main())
