"""The base exception of the collection layer."""

from __future__ import annotations


class CollectError(Exception):
    """Base class of every error the collection layer raises on purpose."""
