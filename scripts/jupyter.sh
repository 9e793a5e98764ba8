#!/usr/bin/env bash
# Set up and open the book's chapters in JupyterLab, from a fresh clone:
#
#   bash scripts/jupyter.sh                 # then pick a chapter in the browser
#   bash scripts/jupyter.sh --no-browser    # extra arguments go to `jupyter lab`
#
# It creates the virtual environment .venv when there is none, installs PyTorch into it
# unless it is there already, then the package with what the chapters need
# (pip install -e ".[book]": JupyterLab 4 with jupyterlab-myst, which renders the
# chapters' MyST roles and directives, ipywidgets, pandas) and a `python3` kernel
# spec inside .venv, so the chapters run with this environment's Python. Later runs
# skip what is installed and start JupyterLab at once, on book/ with the preface open.
#
# Environment: PYTHON (interpreter for a new .venv, default python3), LVAE_VENV (another
# environment folder), LVAE_TORCH (the torch requirement, default "torch"; for instance
# "torch==2.13.0", or "torch --index-url https://download.pytorch.org/whl/cpu" for the
# small CPU build on Linux).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="${LVAE_VENV:-$ROOT/.venv}"
log() { echo "[jupyter] $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" 2>/dev/null; then
  # torch first, on its own: the package accepts any torch >= 2.2.
  log "pip install ${LVAE_TORCH:-torch}"
  # shellcheck disable=SC2086  # LVAE_TORCH may carry pip options
  "$PY" -m pip install --quiet ${LVAE_TORCH:-torch}
fi
TORCH_VERSION="$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")"

if ! "$PY" -c "import lvae_core, jupyterlab, jupyterlab_myst, ipywidgets, ipykernel, pandas, jinja2" \
    2>/dev/null; then
  log "pip install -e .[book] (keeping torch $TORCH_VERSION)"
  "$PY" -m pip install --quiet -e ".[book]" "torch==$TORCH_VERSION"
fi

KERNEL_JSON="$VENV/share/jupyter/kernels/python3/kernel.json"
if [[ ! -f "$KERNEL_JSON" ]] || ! grep -q "$VENV/bin/python" "$KERNEL_JSON"; then
  log "installing the python3 kernel spec into $VENV"
  "$PY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
fi

# The environment's kernel spec wins over a user-level `python3` one.
export JUPYTER_PREFER_ENV_PATH=1
# Training uses the cores other programs leave idle (see lvae_core.runtime.CpuShare).
export LVAE_THREADS="${LVAE_THREADS:-auto}"
log "torch $TORCH_VERSION; training uses: $("$PY" -c "import lvae_core; print(lvae_core.choose_device())")"
log "starting JupyterLab on $ROOT/book (stop it with Ctrl-C)"
exec "$PY" -m jupyterlab --ServerApp.root_dir="$ROOT/book" \
  --LabApp.default_url=/lab/tree/00_preface.ipynb "$@"
