"""The lab: an offline "badssl.com" — a generated PKI and one real TLS server per misconfiguration.

It is certdoctor's demo (``certdoctor lab``), its test fixture, and a way for users to test their own
clients against known-broken chains. Everything listens on loopback only.
"""

from .endpoint import Endpoint
from .foreground import serve_foreground
from .scenarios import SCENARIOS, Scenario
from .servers import Lab, LabStartError

__all__ = ["SCENARIOS", "Endpoint", "Lab", "LabStartError", "Scenario", "serve_foreground"]
