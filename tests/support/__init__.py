"""Helpers shared by test layers: network fault injection and pipeline drivers."""
