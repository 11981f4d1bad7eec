"""PMS2.0 simulator: the legacy production management database, seeded and changing, on any SQL backend."""
