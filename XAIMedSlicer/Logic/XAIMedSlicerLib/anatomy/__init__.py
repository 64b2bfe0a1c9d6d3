"""Anatomy: label maps, structure names and per-structure attribution statistics."""
