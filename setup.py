"""A shim for tools that look for setup.py: everything (metadata, dependencies, packages) is in pyproject.toml."""

from setuptools import setup

setup()
