"""Reporting: turn an alert, its enrichment and the knowledge base into an AlertReport."""
