"""Presentation only: no judgement here. Every certificate-derived string passes through :func:`clean`."""

from .escape import clean

__all__ = ["clean"]
