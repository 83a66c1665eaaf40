"""Export AlertReports as files for review in git."""
