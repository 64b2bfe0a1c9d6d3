"""Attribution methods: one file each, behind one registry with one signature.

``get_method(name)(model, x, target, **params) -> Attribution``. Importing this package registers
every built-in method.
"""

from . import gradcam, integrated_gradients  # noqa: F401,E402  (registration side effects)
from .registry import Attribution, MethodSpec, available_methods, get_method, register  # noqa: F401

# isort: split
from . import (  # noqa: F401,E402  (registration side effects)
    attention,
    gradcampp,
    guided_backprop,
    occlusion,
    saliency,
    smoothgrad,
)
