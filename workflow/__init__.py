"""Workflow core: consumes canonical events and tracks every application as a case."""
