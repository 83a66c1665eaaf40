"""The curated knowledge base: one entry per Falco rule, in our own words."""
