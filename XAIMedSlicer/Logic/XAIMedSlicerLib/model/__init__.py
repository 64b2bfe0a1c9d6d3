"""Models: model cards, MONAI bundles and TorchScript files, loaded onto a device."""

from .card import ModelCard  # noqa: F401
from .loader import LoadedModel, load_model  # noqa: F401
