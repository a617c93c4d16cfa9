"""``python -m certdoctor.cli``: the ``certdoctor`` command."""

from . import entry

entry()
