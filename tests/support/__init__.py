"""Shared test helpers: tables created from template.yaml, canonical event builders, an oracle."""
