#!/usr/bin/env bash
# Install everything and run every test of the book, in fast mode (LVAE_FAST=1):
#   0. lint the package, the tests and the benchmarks with ruff (pyproject.toml's settings),
#   1. execute every chapter notebook with nbval (pytest --nbval-lax book/; notebooks/, the
#      plain edition, has the same code cells and is not executed again),
#   2. build the HTML book with warnings as errors (scripts/build_book.sh),
#   3. pytest tests/: the unit tests, the browser test of the built book and the
#      JupyterLab test of the chapters (tests/test_jupyterlab.py).
# Trained checkpoints are cached under .cache/ by lvae_core, so the book build
# reuses what the notebooks trained in step 1.
# Every step runs even if an earlier one failed (the browser test then reports
# the missing build); the exit status is non-zero if any step failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

T0=$(date +%s)
bash scripts/setup.sh
T_SETUP=$(( $(date +%s) - T0 ))

export LVAE_FAST=1
export JUPYTER_PREFER_ENV_PATH=1
export PATH="$PWD/.venv/bin:$PATH"
PY="$PWD/.venv/bin/python"

declare -a NAMES=() RESULTS=() TIMES=()
run_step() {  # name command...
  local name="$1"; shift
  local t rc
  echo
  echo "================================================================ $name"
  t=$(date +%s)
  set +e
  "$@"
  rc=$?
  set -e
  NAMES+=("$name"); RESULTS+=("$rc"); TIMES+=("$(( $(date +%s) - t ))")
  return 0
}

run_step "lint (ruff)" "$PWD/.venv/bin/ruff" check lvae_core tests benchmarks
# The chapters run as the build runs them: with the cores other programs leave idle
# (LVAE_THREADS=auto, lvae_core.runtime.CpuShare). The unit tests keep PyTorch's fixed count,
# so that the runs they compare bit for bit repeat their numbers.
LVAE_THREADS=auto run_step "notebooks (nbval-lax)" \
  "$PY" -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
        -p no:cacheprovider book/
run_step "book build (fast, -W)" bash scripts/build_book.sh --skip-setup
run_step "unit + browser tests" "$PY" -m pytest --durations=15 tests/

echo
echo "================================================================ summary"
echo "setup: ${T_SETUP} s"
passed=0; failed=0
for i in "${!NAMES[@]}"; do
  if [[ "${RESULTS[$i]}" == "0" ]]; then status="ok"; passed=$((passed + 1));
  else status="FAILED (exit ${RESULTS[$i]})"; failed=$((failed + 1)); fi
  printf '%-24s %-20s %5s s\n' "${NAMES[$i]}" "$status" "${TIMES[$i]}"
done
echo "total: $(( $(date +%s) - T0 )) s"
echo "steps: ${passed} passed, ${failed} failed"
((failed == 0))
