#!/usr/bin/env bash
# The side-by-side comparison with the Python stack, on this machine, in one run (README.md in this folder).
#
#   benches/compare/run.sh                       # every workload, 2 rounds
#   WORKLOADS="tiny lora" ROUNDS=3 benches/compare/run.sh
#   BF16=1 WORKLOADS=small benches/compare/run.sh   # adds the bf16 runs of both sides
#
# On first use it creates a Python venv from PyPI with the pinned versions of requirements.txt, outside the
# repository ($SFT_COMPARE_VENV, default ~/.cache/sft-compare/venv; torch's wheel with its CUDA libraries is ~6 GB).
# Then, per workload: `compare prepare` writes the checkpoint and the tokenized examples both sides read, and the
# sides run in turn, ROUNDS times (sft-rs with 1 worker, sft-rs with WORKERS workers, Trainer + PEFT, SFTTrainer),
# each in its own process, so the rounds interleave and a slow spell of the machine hits every side. The table
# gives the median of the rounds; every JSON line is kept in $OUT/results.jsonl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${SFT_COMPARE_VENV:-$HOME/.cache/sft-compare/venv}"
work="${SFT_COMPARE_DIR:-$HOME/.cache/sft-compare/work}"
workloads="${WORKLOADS:-tiny small smollm2-135m lora}"
rounds="${ROUNDS:-2}"
workers="${WORKERS:-2}"
out="${OUT:-$work/run-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "creating the Python venv in $venv (pinned: $here/requirements.txt)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi
python="$venv/bin/python"

(cd "$repo" && cargo build --release --quiet --example compare)
compare="$repo/target/release/examples/compare"

results="$out/results.jsonl"
: >"$results"
# Runs one side; its JSON line (the last line it prints) goes to the results, the rest to a log.
side() {
    local log="$out/$1.log"
    shift
    echo "  $*" >&2
    "$@" >"$log" 2>&1 || { echo "failed: $* (log: $log)" >&2; tail -20 "$log" >&2; exit 1; }
    grep '^{' "$log" | tail -1 >>"$results"
}

for w in $workloads; do
    echo "== $w" >&2
    for r in $(seq 1 "$rounds"); do
        if [[ "$w" == lora ]]; then
            side "lora-rs-$r" "$compare" lora --iterations 10
            side "lora-py-$r" "$python" "$here/hf_train.py" --lora --iterations 10
            continue
        fi
        dir="$work/$w"
        [[ -f "$dir/workload.json" ]] || "$compare" prepare --workload "$w" --dir "$dir" >&2
        side "$w-rs1-$r" "$compare" run --dir "$dir" --workers 1
        side "$w-rs$workers-$r" "$compare" run --dir "$dir" --workers "$workers"
        side "$w-hf-$r" "$python" "$here/hf_train.py" --dir "$dir" --trainer hf
        side "$w-trl-$r" "$python" "$here/hf_train.py" --dir "$dir" --trainer trl
        if [[ -n "${BF16:-}" ]]; then
            side "$w-rs1-bf16-$r" "$compare" run --dir "$dir" --workers 1 --bf16
            side "$w-hf-bf16-$r" "$python" "$here/hf_train.py" --dir "$dir" --trainer hf --bf16
        fi
    done
done

cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1), family $(lscpu | sed -n 's/^CPU family: *//p' | head -1) model $(lscpu | sed -n 's/^Model: *//p' | head -1), $(nproc) CPUs$(grep -qw avx512f /proc/cpuinfo && echo ', AVX-512' || true)$(grep -qw amx_tile /proc/cpuinfo && echo ', AMX' || true)"
"$python" "$here/table.py" "$results" "$cpu" | tee "$out/table.md"
echo "results: $results" >&2
