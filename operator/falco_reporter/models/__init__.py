"""Typed views of everything falco-reporter reads and writes; no I/O here."""
