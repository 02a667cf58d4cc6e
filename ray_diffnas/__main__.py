"""``python -m ray_diffnas``: the ``ray-diffnas`` command."""

from ray_diffnas.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
