"""Adapters: talk to one legacy system each and return raw records with source metadata."""
