"""Unified HTTP API for new platforms, built on FastAPI."""
