"""``python -m tradeoff``: the command line (the form torchrun takes:
``torchrun --nproc-per-node N -m tradeoff generate ...``)."""

from .app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
