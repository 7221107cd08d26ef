"""``python -m online``: real-time sleep staging of a live LSL stream (or a replayed recording)."""

from online.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
