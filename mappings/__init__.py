"""Declarative mappings: YAML files that turn legacy records into canonical documents."""
