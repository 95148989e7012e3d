#!/usr/bin/env bash
# Every GGUF check of the micro models in one run: each model exported in every type and read by transformers' GGUF
# loader (check_export.py) and run by llama.cpp (check_llama_cpp.py), and each fixture's PEFT adapter merged and
# exported by the CLI and compared with PEFT's own merge. Not part of CI (it needs torch, transformers, peft, gguf
# and llama-cpp-python in a venv):
#
#   python3 -m venv /tmp/gguf-venv
#   /tmp/gguf-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate peft gguf llama-cpp-python \
#       safetensors numpy tokenizers
#   scripts/gguf/check_all.sh /tmp/gguf-venv/bin/python FIXTURES_DIR WORK_DIR
#
# FIXTURES_DIR holds the micro models (crates/sft-model/tests/fixtures); WORK_DIR receives the variants and files.
set -euo pipefail
python=$1 fixtures=$2 work=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p "$work"
"$python" scripts/gguf/variants.py "$fixtures" "$work/models"
for m in llama qwen2 qwen3 phi3 mistral; do rm -rf "$work/models/$m-micro"; cp -r "$fixtures/$m-micro" "$work/models/"; done
# The project's llama-micro fixture has no tokenizer files: models/llama-tiny carries the same ones.
for m in llama-micro llama-wide; do
    for f in tokenizer.json tokenizer_config.json; do
        [ -f "$work/models/$m/$f" ] || cp "models/llama-tiny/$f" "$work/models/$m/"
    done
done
cargo build -q -p sft-export --example export_gguf
cargo build -q --bin sft
export_one() { # model type [name]
    rm -f "$work/$1-$2.gguf"
    target/debug/examples/export_gguf "$work/models/$1" "$work/$1-$2.gguf" "$2" ${3:-}
}
quiet() { "$@" 2>&1 | grep -E "via|against|tokeniz|differs|llama.cpp's|Error" || true; }
models="llama-micro qwen2-micro qwen3-micro phi3-micro mistral-micro gemma3-six phi3-longrope llama-spm mistral-spm gemma3-spm
        llama-wide qwen2-wide"
for m in $models; do
    window=""; case $m in mistral*) window="--no-window";; esac
    name=""; case $m in phi3*) name="micro";; esac  # llama.cpp special-cases names with phi3 (see the README)
    for t in f32 f16 bf16 q8_0 q4_0 q4_k_m; do
        export_one "$m" "$t" "$name"
        quiet "$python" scripts/gguf/check_export.py "$work/models/$m" "$work/$m-$t.gguf"
        quiet "$python" scripts/gguf/check_llama_cpp.py "$work/models/$m" "$work/$m-$t.gguf" $window
    done
done
# Merged by the CLI: the fixtures' PEFT adapters (gemma3-six carries its own), against PEFT's merge.
for m in llama-micro qwen2-micro qwen3-micro phi3-micro mistral-micro gemma3-six; do
    adapter=$work/models/$m/peft_adapter
    [ -d "$adapter" ] || adapter=$fixtures/$m/peft_adapter
    for t in f32 f16; do
        rm -f "$work/merged-$m-$t.gguf"
        target/debug/sft export gguf --adapter "$adapter" --base "$work/models/$m" --out "$work/merged-$m-$t.gguf" \
            --type "$t" --name merged >/dev/null
        quiet "$python" scripts/gguf/check_export.py "$work/models/$m" "$work/merged-$m-$t.gguf" --adapter "$adapter"
    done
done
# Our Q8_0, Q4_0 and Q4_K_M against llama.cpp's own quantizer, tensor by tensor.
for m in $models; do
    for t in q8_0 q4_0 q4_k_m; do quiet "$python" scripts/gguf/check_quantize.py "$work/$m-f32.gguf" "$work/$m-$t.gguf" $t; done
done
