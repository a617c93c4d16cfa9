"""``python -m certdoctor``: the ``certdoctor`` command."""

from .cli import entry

entry()
