"""Helpers shared by every test tier (unit, integration, reliability, e2e)."""
