#!/usr/bin/env bash
# The instructor's kit (see book/instructors_guide.md), with the repository's .venv:
#   bash scripts/course_kit.sh                       # build course_kit/ for every chapter
#   bash scripts/course_kit.sh build --verify 01_elbo  # one chapter; grade its solutions too
#   bash scripts/course_kit.sh grade 01_elbo submissions/   # -> grades-01_elbo.csv
#   bash scripts/course_kit.sh figures               # every figure at slide resolution
# Needs otter-grader (in requirements.txt; or pip install "lvae_core[course]").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY="$(command -v python3)"
if ! "$PY" -c "import otter" 2>/dev/null; then
  echo "otter-grader is missing: $PY -m pip install 'otter-grader>=7,<8'" >&2
  exit 1
fi
export JUPYTER_PREFER_ENV_PATH=1      # the kernel of this environment, not a user's python3
[[ $# -eq 0 ]] && set -- build
exec "$PY" "$ROOT/scripts/course_kit.py" "$@"
