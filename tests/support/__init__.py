"""Helpers shared by test modules (plain functions and constants; fixtures live in conftest.py).

Test modules import these as ``from tests.support... import ...`` and never import each other."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout: scripts/, config/, data_example/ are read from here
