"""How the scan's extra processes start: a local scan's helpers (:mod:`certdoctor.scan.driver`) and a ``local:N``
Dask cluster's workers (:mod:`certdoctor.scan.cluster`)."""

from __future__ import annotations

import multiprocessing as mp
import sys

# Forked (they inherit the imports and the loaded trust stores) where that is safe, spawned (a fresh interpreter
# that imports and loads them again) elsewhere. Windows has no fork; on macOS forking a process that has used
# system frameworks is unsafe, and spawn is Python's default there (the multiprocessing documentation, "Contexts
# and start methods").
START_METHOD = "fork" if sys.platform != "darwin" and "fork" in mp.get_all_start_methods() else "spawn"
