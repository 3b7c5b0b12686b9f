"""A shim for tools that still call setup.py; pyproject.toml declares the
package (PEP 621)."""

from setuptools import setup

setup()
