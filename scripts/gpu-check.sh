#!/usr/bin/env bash
# The GPU check of sft-rs, for a machine with an NVIDIA GPU and a Vulkan driver (or, with --quick, Mesa's lavapipe
# on the CPU): builds with `--features wgpu` and runs
#   1. the wgpu parity tests: micro model logits, a LoRA training step and the NF4 loss against flex, NF4
#      dequantization bit for bit (sft-peft); four trainer steps with clipping and an evaluation (sft-train);
#      `sft train` with "device": "wgpu" against "cpu" (sft);
#   2. the NF4 and LoRA kernel benches on the GPU (criterion, SFT_BENCH_DEVICE=wgpu);
#   3. training throughput runs of a Llama-3.2-1B-shaped model with random weights (no download): QLoRA r 8 on
#      q/k/v/o, NF4 base with f32, then bf16, then fp16 compute (loss-scaled), batches of 4 × 512 tokens, tokens/s
#      and the GPU's peak memory;
#   4. data parallel on the GPU: `mpirun -n 2` (both ranks on GPU 0, SFT_SHARE_GPU=1) against one process with twice
#      the accumulation on the legal_clauses config with "device": "wgpu" (needs Open MPI and a build with
#      `--features mpi,wgpu`; skipped without mpirun), compared by scripts/mpi/compare_runs.py within 1e-6.
# Everything printed is also kept in $OUT (default target/gpu-check). Dev profile: dependencies are optimised
# (see Cargo.toml), so the build is shared with `cargo test`.
#
#   scripts/gpu-check.sh            # a real GPU
#   scripts/gpu-check.sh --quick    # lavapipe / no GPU: benches run once (criterion --test), the tiny preset
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
OUT=${OUT:-target/gpu-check}
mkdir -p "$OUT"
export CARGO_TERM_COLOR=never
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

: > "$OUT/summary.txt"
log "$(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT/summary.txt"
else
    log "no nvidia-smi: no NVIDIA GPU visible"
fi
if command -v vulkaninfo >/dev/null; then
    vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" | tee -a "$OUT/summary.txt" || true
fi

log "1. wgpu parity tests"
# One invocation for the three packages: one build of Burn's wgpu stack, shared with the benches and the example.
cargo test --locked -p sft-peft -p sft-train -p sft --features sft-peft/wgpu,sft-train/wgpu,sft/wgpu --test it wgpu \
    -- --nocapture 2>&1 | tee "$OUT/parity.txt" |
    { grep -E "max \||wgpu .* vs|skipped steps|test result|FAILED|panicked" || true; } | tee -a "$OUT/summary.txt"

log "2. NF4 / LoRA benches on wgpu"
if [ $QUICK = 1 ]; then
    BENCH_ARGS=(--test)     # each benchmark once: lavapipe's timings mean nothing
else
    BENCH_ARGS=(--warm-up-time 3 --measurement-time 10)
fi
# The dev profile (dependencies optimised, see Cargo.toml) spares a second, release build of Burn and CubeCL: the
# kernels run on the GPU either way.
SFT_BENCH_DEVICE=wgpu cargo bench --locked --profile dev --features wgpu --bench nf4 --bench lora -- "${BENCH_ARGS[@]}" 2>&1 |
    tee "$OUT/benches.txt" | { grep -E "^[a-z0-9_]+/|time:|^Testing|^Success" || true; } | tee -a "$OUT/summary.txt"

log "3. training throughput"
if [ $QUICK = 1 ]; then
    RUN=(--device wgpu --preset tiny --steps 3 --batch 2 --seq 128)
else
    RUN=(--device wgpu --preset llama-3.2-1b --steps 6 --batch 4 --seq 512)
fi
cargo build --locked --features wgpu --example gpu_throughput 2>&1 | tail -1
# f32 compute always; then bf16 compute, which needs a wgpu device with bf16 shaders (lavapipe has none: its
# failure is reported, not fatal); then fp16 compute with dynamic loss scaling.
for precision in f32 bf16 fp16; do
    EXTRA=()
    [ $precision != f32 ] && EXTRA=(--$precision)
    SAMPLER=""
    if command -v nvidia-smi >/dev/null; then
        BASE=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/memory-$precision.csv" &
        SAMPLER=$!
    fi
    if cargo run --locked --features wgpu --example gpu_throughput -- "${RUN[@]}" "${EXTRA[@]}" \
        > "$OUT/throughput-$precision.txt" 2>&1; then
        grep -E "^(model|step|throughput|fp16)" "$OUT/throughput-$precision.txt" | tee -a "$OUT/summary.txt"
    else
        REASON=$(grep -m1 -oE "UnsupportedType\([^)]*\)" "$OUT/throughput-$precision.txt" ||
            grep -m1 -E "panicked|^Error" "$OUT/throughput-$precision.txt" || echo "see throughput-$precision.txt")
        log "$precision run failed: $REASON"
    fi
    if [ -n "$SAMPLER" ]; then
        kill "$SAMPLER" 2>/dev/null || true
        PEAK=$(sort -n "$OUT/memory-$precision.csv" | tail -1)
        log "$precision: peak GPU memory ${PEAK} MiB (${BASE} MiB in use before the run)"
    fi
done
log "4. data parallel: mpirun -n 2 on one GPU against one process"
if command -v mpirun >/dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    cargo build --locked --features mpi,wgpu --bin sft 2>&1 | tail -1
    DP=(--config configs/legal_clauses.json --set device=wgpu --set dataset_config.sample_size=40
        --set training_args.max_steps=6 --set training_args.logging_steps=1 --set training_args.eval_steps=3
        --set training_args.save_steps=3)
    rm -rf "$OUT/dp-one" "$OUT/dp-two"
    target/debug/sft train "${DP[@]}" --set training_args.output_dir="$OUT/dp-one" \
        --set training_args.gradient_accumulation_steps=2 > "$OUT/dp-one.txt" 2>&1
    SFT_SHARE_GPU=1 mpirun --oversubscribe -n 2 target/debug/sft train "${DP[@]}" \
        --set training_args.output_dir="$OUT/dp-two" --set training_args.gradient_accumulation_steps=1 \
        > "$OUT/dp-two.txt" 2>&1
    grep -h "Completed after" "$OUT/dp-one.txt" "$OUT/dp-two.txt" | tee -a "$OUT/summary.txt"
    python3 scripts/mpi/compare_runs.py "$OUT/dp-one" "$OUT/dp-two" --relative 1e-6 2>&1 | tee -a "$OUT/summary.txt" || true
else
    log "no mpirun: skipped (apt-get install libopenmpi-dev openmpi-bin libclang-dev)"
fi
log "done; full outputs in $OUT"
