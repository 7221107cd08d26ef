"""``python -m online``: real-time sleep staging of a live LSL stream (or a replayed recording)."""

import sys

from online.cli import main

sys.exit(main())
