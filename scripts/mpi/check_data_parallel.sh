#!/usr/bin/env bash
# Data-parallel training through MPI against one process, on the legal_clauses config (models/llama-tiny, CPU):
# `mpirun -n 2` with accumulation 1 against one process with accumulation 2 (losses, gradient norms and the adapter
# bit for bit) over shared memory and over TCP on loopback (a stand-in for two nodes), with an odd number of
# micro-batches (a rank idle in the last window), early stopping, an interrupted and resumed run, and a rank killed
# with SIGKILL (the job must end with an error, not hang, and the last checkpoint must stay intact).
#
#   apt-get install libopenmpi-dev openmpi-bin libclang-dev
#   scripts/mpi/check_data_parallel.sh            # builds target/debug/sft with --features mpi
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --features mpi --bin sft
sft=target/debug/sft
# CI runs as root; two ranks on a machine of one or two cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--config configs/legal_clauses.json --set dataset_config.sample_size=40 --set training_args.logging_steps=1
        --set training_args.eval_steps=3 --set training_args.save_steps=3 --set training_args.save_total_limit=null)
one() { "$sft" train "${common[@]}" --set training_args.output_dir="$1" --set training_args.gradient_accumulation_steps=2 "${@:2}" >/dev/null 2>&1; }
two() { mpirun --oversubscribe -n 2 "${mca[@]}" "$sft" train "${common[@]}" --set training_args.output_dir="$1" \
        --set training_args.gradient_accumulation_steps=1 "${@:2}" >"$1.log" 2>&1; }
compare() { python3 scripts/mpi/compare_runs.py "$@"; }
mca=()

echo "== 2 ranks x accumulation 1 against 1 process x accumulation 2 (shared memory)"
one "$work/one" --set training_args.max_steps=6
two "$work/two" --set training_args.max_steps=6
compare "$work/one" "$work/two"

echo "== the same over TCP on loopback (--mca btl self,tcp)"
mca=(--mca btl self,tcp)
two "$work/tcp" --set training_args.max_steps=6
compare "$work/one" "$work/tcp"
mca=()

echo "== an odd number of micro-batches: 9 per epoch, one epoch (rank 1 idle in the last window)"
one "$work/odd-one" --set training_args.num_train_epochs=1
two "$work/odd-two" --set training_args.num_train_epochs=1
python3 - "$work/odd-two" <<'PY'
import json, sys
state = json.load(open(f"{sys.argv[1]}/trainer_state.json"))
per_epoch = state["batches_per_epoch"]
assert per_epoch % 2 == 1, f"{per_epoch} micro-batches per epoch: not odd"
print(f"  {per_epoch} micro-batches per epoch, {state['global_step']} steps")
PY
compare "$work/odd-one" "$work/odd-two"

echo "== early stopping ends every rank at the same step"
stopping=(--set training_args.max_steps=30 --set early_stopping.early_stopping_patience=1
          --set early_stopping.early_stopping_threshold=10.0)
one "$work/stop-one" "${stopping[@]}"
two "$work/stop-two" "${stopping[@]}"
compare "$work/stop-one" "$work/stop-two"
grep -q "Stopped early" "$work/stop-two.log" || { echo "no early stop"; exit 1; }

echo "== interrupted (SIGINT to rank 1 alone) and resumed: equal to the uninterrupted run"
long=(--set training_args.max_steps=60)
two "$work/straight" "${long[@]}"
two "$work/resumed" "${long[@]}" &
job=$!
rank_pid() { # the pid of rank $1 of the job writing into $2
    for pid in $(pgrep -f "sft train.*$2" || true); do
        if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$pid"; fi
    done
}
for _ in $(seq 600); do [ -d "$work/resumed/checkpoint-3" ] && break; sleep 0.1; done
pid=$(rank_pid 1 "$work/resumed")
[ -n "$pid" ] || { echo "rank 1 not found (the run ended before checkpoint-3?)"; exit 1; }
kill -INT "$pid"
wait "$job"
grep -q "Interrupted after" "$work/resumed.log" || { echo "not interrupted"; cat "$work/resumed.log"; exit 1; }
echo "  stopped with a checkpoint ($(ls "$work/resumed" | grep checkpoint- | tr '\n' ' '))"
two "$work/resumed" "${long[@]}" --set training_args.resume_from_checkpoint=true
compare "$work/straight" "$work/resumed"

echo "== a rank killed (SIGKILL): the job ends with an error, the last checkpoint intact"
two "$work/killed" --set training_args.max_steps=400 &
job=$!
for _ in $(seq 600); do [ -d "$work/killed/checkpoint-3" ] && break; sleep 0.1; done
pid=$(rank_pid 1 "$work/killed")
[ -n "$pid" ] || { echo "rank 1 not found"; exit 1; }
kill -KILL "$pid"
started=$(date +%s)
if ! timeout 120 tail --pid="$job" -f /dev/null; then
    echo "the job still runs 120 s after a rank was killed"; kill -KILL "$job"; exit 1
fi
status=0
wait "$job" || status=$?
[ "$status" -ne 0 ] || { echo "the job succeeded after a rank was killed"; exit 1; }
echo "  mpirun ended with status $status $(( $(date +%s) - started )) s after the kill"
grep -m1 "signal 9" "$work/killed.log" | sed 's/^ */  /' || true
latest=$(ls -d "$work/killed"/checkpoint-* | sort -t- -k2 -n | tail -1)
(cd "$latest" && sha256sum --quiet -c checksums.sha256) && echo "  $(basename "$latest") intact (sha256sum -c checksums.sha256)"
echo "all data-parallel checks passed"
