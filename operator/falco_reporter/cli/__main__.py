"""``python -m falco_reporter.cli``."""

from falco_reporter.cli import main

raise SystemExit(main())
