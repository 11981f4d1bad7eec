"""Simulators of the legacy systems (marketing, PMS, dispatch), seeded, run in-process or alone."""
