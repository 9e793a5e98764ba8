#!/usr/bin/env bash
# Build the HTML book into _build/html (entry page: _build/html/index.html).
#
#   bash scripts/build_book.sh               # install everything, full-size chapters
#   LVAE_FAST=1 bash scripts/build_book.sh   # small, fast chapters (what CI builds)
#   bash scripts/build_book.sh --skip-setup  # skip scripts/setup.sh
#
# Notebooks are executed during the build and cached (jupyter-cache, one cache
# per mode in _build/), so a rebuild only re-runs notebooks whose code changed.
# Sphinx warnings are errors (-W) and every missing reference is reported (-n);
# --keep-going lists all of them before failing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SKIP_SETUP=0
for arg in "$@"; do
  case "$arg" in
    --skip-setup) SKIP_SETUP=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if ((SKIP_SETUP == 0)); then
  bash scripts/setup.sh
fi

# Notebooks run with the kernel spec installed in .venv (see setup.sh).
export JUPYTER_PREFER_ENV_PATH=1
export PATH="$PWD/.venv/bin:$PATH"
# LVAE_FAST is passed through to the notebook kernels unchanged.
# Training and long estimates use the cores other programs leave idle (lvae_core.runtime.CpuShare):
# PyTorch's threads spin while they wait for each other, and on a busy machine that costs
# several times the fair share (benchmarks/bench_contention.py).
export LVAE_THREADS="${LVAE_THREADS:-auto}"
if [[ "${LVAE_FAST:-0}" == "1" ]]; then MODE="fast (LVAE_FAST=1)"; else MODE="full"; fi
echo "[build] building the book in $MODE mode"

# A fresh Sphinx environment on every build: Sphinx only reports the warnings
# of documents it re-reads, so an incremental build could pass with -W while
# an unchanged page still has a warning. Executed notebooks come from the
# jupyter cache, so this costs seconds.
rm -rf _build/.doctrees _build/html

START=$(date +%s)
mkdir -p _build
LOG=_build/build.log
set +e
jupyter-book build -W -n --keep-going . 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
ELAPSED=$(( $(date +%s) - START ))
if ((status != 0)); then
  python scripts/explain_build_failure.py "$LOG" || echo "[build] FAILED after ${ELAPSED} s: see the warnings listed above (full log: $LOG)"
  exit "$status"
fi

echo "[build] HTML book: $PWD/_build/html/index.html"
echo "[build] build time: ${ELAPSED} s ($MODE mode)"
