"""Geometry: the Volume type, the one LPS/RAS conversion, physical-space resampling."""
