#!/usr/bin/env bash
# Install everything the book needs, from nothing, on a Debian machine:
#   1. Debian packages: chromium (browser test) and dataset-fashion-mnist (data),
#   2. the virtual environment .venv with torch 2.13.0 (CPU), requirements.txt
#      and the lvae_core package (editable, with its book extra: JupyterLab and
#      jupyterlab-myst, which renders the chapters' MyST in JupyterLab),
#   3. a Jupyter kernel spec inside .venv, so notebooks run with .venv's python,
#   4. the vendored JavaScript for the offline HTML (scripts/fetch_vendor.sh).
#
# Idempotent: every step is skipped when it is already done, so running it
# again takes a few seconds. Run from anywhere; works on the repository root.
# Environment: PYTHON (interpreter for a new .venv, default python3.11 or
# python3), LVAE_SETUP_FORCE=1 (reinstall the Python packages).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
TORCH_VERSION="2.13.0"
START=$(date +%s)

log() { echo "[setup] $*"; }
warn() { echo "[setup] WARNING: $*" >&2; }

# --------------------------------------------------------------------------- 1. apt
APT_PACKAGES=(chromium dataset-fashion-mnist)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  SUDO=()
  can_apt=1
  if ! command -v apt-get >/dev/null 2>&1; then
    can_apt=0
  elif [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      can_apt=0
    fi
  fi
  if ((can_apt)); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { "${SUDO[@]}" apt-get update -qq \
           && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
      warn "apt-get failed for: ${missing[*]}"
    fi
  else
    warn "cannot run apt-get (not root, no sudo, or no apt); missing: ${missing[*]}"
  fi
else
  log "Debian packages present: ${APT_PACKAGES[*]}"
fi

if [[ ! -x /usr/bin/chromium && -z "${LVAE_CHROMIUM:-}" ]]; then
  echo "[setup] ERROR: /usr/bin/chromium is missing (install Debian's chromium package)" >&2
  exit 1
fi
if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
  warn "dataset-fashion-mnist is not installed; chapters that train on Fashion-MNIST will fail"
fi

# --------------------------------------------------------------------------- 2. venv
if [[ ! -x "$VENV/bin/python" ]]; then
  PY="${PYTHON:-}"
  if [[ -z "$PY" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  log "creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

# Re-install only when the inputs changed (stamp = hash of the inputs).
stamp_inputs() {
  {
    echo "torch==$TORCH_VERSION"
    [[ -f requirements.txt ]] && cat requirements.txt
    [[ -f pyproject.toml ]] && cat pyproject.toml
    "$VENV/bin/python" --version 2>&1
  } | sha256sum | cut -d' ' -f1
}
STAMP_FILE="$VENV/.lvae-setup-stamp"

if [[ "${LVAE_SETUP_FORCE:-0}" != "1" && -f "$STAMP_FILE" \
      && "$(cat "$STAMP_FILE")" == "$(stamp_inputs)" ]]; then
  log "Python packages up to date (delete $STAMP_FILE or set LVAE_SETUP_FORCE=1 to reinstall)"
else
  # torch FIRST and pinned: any other package that requires "torch" would
  # otherwise pull the newest build together with several GB of CUDA packages.
  if "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    log "torch $TORCH_VERSION already installed"
  else
    log "pip install torch==$TORCH_VERSION"
    "${PIP[@]}" install --quiet "torch==$TORCH_VERSION"
  fi
  if [[ -f requirements.txt ]]; then
    log "pip install -r requirements.txt"
    "${PIP[@]}" install --quiet -r requirements.txt "torch==$TORCH_VERSION"
  else
    warn "requirements.txt not found; skipping"
  fi
  if [[ -f pyproject.toml ]]; then
    log "pip install -e .[book]"
    "${PIP[@]}" install --quiet -e ".[book]" "torch==$TORCH_VERSION"
  else
    warn "pyproject.toml not found; lvae_core is not installed"
  fi
  stamp_inputs >"$STAMP_FILE"
fi

# --------------------------------------------------------------------------- 3. kernel
# Notebooks ask for the kernel "python3". Install its spec inside .venv (with
# .venv's python as an absolute path); the scripts also set
# JUPYTER_PREFER_ENV_PATH=1 so a user-level spec cannot take precedence.
KERNEL_JSON="$VENV/share/jupyter/kernels/python3/kernel.json"
if [[ ! -f "$KERNEL_JSON" ]] || ! grep -q "$VENV/bin/python" "$KERNEL_JSON"; then
  log "installing the python3 kernel spec into .venv"
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 \
    --display-name "Python 3 (ipykernel)" >/dev/null
else
  log "kernel spec python3 -> $VENV/bin/python"
fi

# --------------------------------------------------------------------------- 4. vendor
bash scripts/fetch_vendor.sh

log "done in $(( $(date +%s) - START )) s"
