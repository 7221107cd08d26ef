"""``python -m explain``: Grad-CAM, guided Grad-CAM and channel attribution for staged epochs."""

from explain.cli import main

raise SystemExit(main())
