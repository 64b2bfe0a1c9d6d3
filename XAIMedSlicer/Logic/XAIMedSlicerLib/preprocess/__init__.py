"""Preprocessing: the scan (Volume) becomes the network input tensor, and maps come back exactly."""

from .pipeline import ModelInput, prepare_input, to_input_grid  # noqa: F401
