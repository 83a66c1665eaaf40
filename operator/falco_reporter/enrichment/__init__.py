"""Enrichment: what the cluster knows about an alert's pod, owners, image and settings."""
