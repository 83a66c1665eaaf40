"""Test-side names for the real falco-reporter process helpers (shared with demo and bench)."""

from devcluster.net import free_port, probe
from devcluster.reporter import FalcoReporterProcess, post, wait_for

__all__ = ["FalcoReporterProcess", "free_port", "post", "probe", "wait_for"]
