"""``python -m explain``: Grad-CAM, guided Grad-CAM and channel attribution for staged epochs."""

from explain.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
