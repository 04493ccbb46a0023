"""Command-line entry points; run them as `python -m scripts.NAME` from the repository root."""
