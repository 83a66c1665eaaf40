"""Test-side names for the real falco-reporter process helpers (shared with demo and bench)."""

from falco_reporter.devcluster.reporter import FalcoReporterProcess, free_port, post, wait_for

__all__ = ["FalcoReporterProcess", "free_port", "post", "wait_for"]
