"""XAIMedSlicerLib: explanations for MONAI 3D networks, with exact geometry and Slicer scenes.

The pipeline, one subpackage per stage:

``io`` (read/write volumes) -> ``geometry`` (Volume, LPS/RAS, resampling) -> ``model`` (cards,
bundles, TorchScript) -> ``preprocess`` -> ``methods`` (attribution registry) -> ``anatomy``
(per-structure statistics) -> ``scene`` (MRML nodes, .mrb, rendering).  ``explain.explain`` runs it.
"""

from .errors import XAIError
from .geometry.volume import Volume

__all__ = ["XAIError", "Volume"]
__version__ = "0.1.0"
