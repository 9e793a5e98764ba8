#!/usr/bin/env bash
# Chapter 8's full-length semi-supervised runs on Fashion-MNIST
# (results/semisupervised-fashion-mnist): the supervised-only classifier, M1 + logistic
# regression, M2 and M1+M2 at 100 and 1,000 labels, three labelled draws each, all with the
# protocol of lvae_core/campaign/semisupervised.py (the paper's alpha, Adam at 3e-4, at most
# EPOCHS epochs, stopped once the validation error has not improved for PATIENCE epochs, the
# epoch with the lowest validation error kept). Then M2 with ten times the paper's alpha
# (draw 0) in results/semisupervised-fashion-mnist/alpha-x10, for the chapter's section on
# alpha.
#
#   bash scripts/semisupervised_runs.sh           # two lanes in the background, one thread each
#   LANES=1 bash scripts/semisupervised_runs.sh   # the M2 lane only
#   bash scripts/semisupervised_runs.sh --stash   # copy the partial checkpoints into $OUT/resume/
#
# A finished run is skipped; an interrupted one continues from its last checkpoint (every 5
# epochs) in the checkpoint cache ($LVAE_CACHE_DIR/semisupervised). On a machine without
# that cache, the script first copies back what --stash kept. Logs: $LOGS/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${OUT:-results/semisupervised-fashion-mnist}
EPOCHS=${EPOCHS:-300}
PATIENCE=${PATIENCE:-30}
LOGS=${LOGS:-$OUT/logs}
PY="$PWD/.venv/bin/python"
CACHE="$("$PY" -c 'from lvae_core.data import cache_dir; print(cache_dir())')/semisupervised"
RESUME="$OUT/resume/semisupervised"

if [[ "${1:-}" == "--stash" ]]; then
  mkdir -p "$RESUME"
  n=0
  for f in "$CACHE"/*.partial.pt; do [[ -e "$f" ]] && cp -p "$f" "$RESUME/" && n=$((n + 1)); done
  echo "stashed $n partial checkpoints in $RESUME/"
  exit 0
fi
if [[ -d "$RESUME" ]]; then    # copy back, never over a newer checkpoint in the cache
  mkdir -p "$CACHE"
  cp -pu "$RESUME"/*.partial.pt "$CACHE/" 2>/dev/null || true
fi

one() {  # one METHOD LABELS DRAW [extra arguments]: a run at one thread, lowest priority
  local method=$1 labels=$2 draw=$3
  shift 3
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE \
    nice -n 19 "$PY" -m lvae_core.campaign.semisupervised --data fashion-mnist --method "$method" \
    --labels "$labels" --draw "$draw" --epochs "$EPOCHS" --patience "$PATIENCE" --threads 1 \
    --checkpoint-every 5 --ship-models --no-progress "$@"
}

lane_m2() {
  for draw in 0 1 2; do
    for labels in 100 1000; do one m2 "$labels" "$draw" --out "$OUT"; done
  done
}

lane_rest() {
  for method in supervised m1-logreg m1m2; do
    for draw in 0 1 2; do
      for labels in 100 1000; do one "$method" "$labels" "$draw" --out "$OUT"; done
    done
  done
  # alpha = 1.0 N / N_labelled, ten times the paper's 0.1 N / N_labelled (N = 50,000)
  one m2 100 0 --alpha 500 --out "$OUT/alpha-x10"
  one m2 1000 0 --alpha 50 --out "$OUT/alpha-x10"
}

mkdir -p "$LOGS"
for l in ${LANES:-1 2}; do
  case $l in
    1) lane_m2 > "$LOGS/lane-1.log" 2>&1 & ;;
    2) lane_rest > "$LOGS/lane-2.log" 2>&1 & ;;
    *) echo "unknown lane $l (1 or 2)" >&2; exit 2 ;;
  esac
done
echo "started lanes ${LANES:-1 2} (PIDs $(jobs -p | tr '\n' ' ')); logs in $LOGS/"
