"""Trust metrics for attribution maps on 3D volumes and 2D images (pure numpy/torch).

* faithfulness: deletion and insertion curves with AUC, against random orders (``faithfulness``);
* localisation against a mask: pointing game, energy pointing game, relevance rank accuracy,
  top-k% IoU (``localisation``);
* sanity: cascading model-parameter randomisation with Spearman and SSIM (``randomisation``);
* robustness: max-sensitivity under small input noise (``robustness``);
* ``flags.map_flags``: the one-line verdict shown beside each map.

Every result is a dataclass with ``to_dict()``, ``to_json()`` and ``save(path)``.
"""

from .faithfulness import Curve, FaithfulnessResult, evaluate_faithfulness  # noqa: F401
from .flags import MapFlags, map_flags  # noqa: F401
from .localisation import (  # noqa: F401
    LocalisationResult,
    energy_pointing_game,
    evaluate_localisation,
    pointing_game,
    relevance_rank_accuracy,
    top_k_overlap,
    top_k_region,
)
from .randomisation import RandomisationResult, cascading_randomisation  # noqa: F401
from .robustness import MaxSensitivityResult, max_sensitivity  # noqa: F401
from .similarity import normalise_map, spearman, ssim  # noqa: F401
