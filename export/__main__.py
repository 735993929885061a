"""Entry point: python -m export --run_dir=runs/<name> --out_dir=exports/<name>."""

from absl import app

from export import export

if __name__ == '__main__':
  export.define_flags()
  app.run(export.main)
