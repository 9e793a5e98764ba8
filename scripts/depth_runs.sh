#!/usr/bin/env bash
# The Ladder VAE paper's main figure on Fashion-MNIST (results/fashion-mnist-depth): test and
# train log-likelihood against the number of stochastic layers (1 to 5) for the VAE, VAE+BN,
# VAE+BN+WU and LVAE+BN+WU, each trained with the LVAE protocol (2000 epochs, warm-up over
# the first 200, constant learning rate) but stopped after UNTIL epochs (default 300). The
# model after 300 epochs is the one the full protocol has then, so the three runs of the
# figure already trained to 2000 epochs (results/fashion-mnist-protocol) give its points
# at 300 from their learning curves, and UNTIL=2000 continues every run to the published
# length.
#
#   bash scripts/depth_runs.sh            # two lanes in the background, one thread each
#   LANES=1 bash scripts/depth_runs.sh    # one lane only (the other core stays free)
#   bash scripts/depth_runs.sh --stash    # copy the resumable state into $OUT/resume/
#
# The lanes share one queue: each takes the next run that no live lane has claimed
# ($LOGS/claims/<run>/pid), so a lane started later, or on a second call, joins the same
# queue. The queue completes the paper's three claims first (the plain, BN+WU and ladder
# models at every depth), then the models with batch norm alone, and last trains again to
# UNTIL the three models results/fashion-mnist-protocol trained to the end: their curves
# give the test points, but only a run stopped at UNTIL is scored on training images (the
# figure's first panel), and the same seed trained twice shows how far a point moves.
#
# Every run keeps a resumable checkpoint every 5 epochs in the checkpoint cache and is
# skipped once it has been scored at UNTIL (k = 1000 on the learning curve's 2,000 test
# images and on the first 2,000 training images binarized once); run the script again to
# continue. A run that diverges is recorded in $OUT/runs/<name>.events.json. Logs: $LOGS/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=results/fashion-mnist-depth
UNTIL=${UNTIL:-300}
PRECISION=${LVAE_PRECISION:-bf16}
LOGS=${LOGS:-$OUT/logs}
PY="$PWD/.venv/bin/python"

if [[ "${1:-}" == "--stash" ]]; then
  exec "$PY" -m lvae_core reproduce --out "$OUT" --stash
fi

QUEUE=hvae-L1-plain,hvae-L5-plain,hvae-L3-plain,hvae-L3-bn-wu,lvae-L3-bn-wu,hvae-L1-bn
QUEUE=$QUEUE,hvae-L2-plain,hvae-L2-bn-wu,lvae-L2-bn-wu,hvae-L4-plain,hvae-L4-bn-wu
QUEUE=$QUEUE,lvae-L4-bn-wu,hvae-L5-bn,hvae-L3-bn,hvae-L2-bn,hvae-L4-bn
QUEUE=$QUEUE,hvae-L1-bn-wu,hvae-L5-bn-wu,lvae-L5-bn-wu
CLAIMS=$LOGS/claims

claim() {  # claim NAME: true when this lane may run NAME (no live lane has claimed it)
  local dir=$CLAIMS/$1 pid
  if ! mkdir "$dir" 2>/dev/null; then
    sleep 1   # a lane that has just made the folder writes its PID next
    pid=$(cat "$dir/pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
  fi
  echo "$BASHPID" > "$dir/pid"
}

lane() {  # the queue's unclaimed runs one after another, at one thread, lowest priority
  for name in ${QUEUE//,/ }; do
    claim "$name" || continue
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE TORCHINDUCTOR_COMPILE_THREADS=1 \
      nice -n 19 "$PY" -m lvae_core reproduce --data fashion-mnist --grid lvae --only "$name" \
      --until "$UNTIL" --precision "$PRECISION" --checkpoint-every 5 --compile --no-progress \
      --out "$OUT"
  done
}

"$PY" -m lvae_core reproduce --out "$OUT" --unstash
mkdir -p "$LOGS" "$CLAIMS"
LANES=${LANES:-2}
[[ "$LANES" =~ ^[1-9]$ ]] || { echo "LANES must be a number of lanes, 1 to 9" >&2; exit 2; }
stamp=$(date +%Y%m%d-%H%M%S)
for ((l = 1; l <= LANES; l++)); do
  lane > "$LOGS/lane-$stamp-$l.log" 2>&1 &
done
echo "started $LANES lanes (PIDs $(jobs -p | tr '\n' ' ')); logs in $LOGS/lane-$stamp-*.log"
