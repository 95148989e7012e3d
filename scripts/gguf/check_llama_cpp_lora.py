"""Runs a GGUF LoRA through llama.cpp (llama-cpp-python) on its base GGUF and compares the logits with the merged
model's GGUF, on the reference batch's first row of MODEL_DIR:

    sft export gguf --adapter ADAPTER --base MODEL_DIR --out merged.gguf --type f32
    sft export gguf --adapter-only --adapter ADAPTER --base MODEL_DIR --out lora.gguf --type f32
    cargo run -p sft-export --example export_gguf -- MODEL_DIR base.gguf f32
    /tmp/gguf-venv/bin/python scripts/gguf/check_llama_cpp_lora.py MODEL_DIR base.gguf lora.gguf merged.gguf

Prints the largest logit difference between base + LoRA and the merged model, and between the base alone and the
merged model (the adapter's effect, for scale).
"""

import sys

import numpy as np
from llama_cpp import Llama
from safetensors.torch import load_file

model_dir, base, lora, merged = sys.argv[1:5]
reference = load_file(f"{model_dir}/reference.safetensors")
length = int(reference["attention_mask"][0].sum())
ids = reference["input_ids"][0][:length].tolist()


def logits(**kwargs):
    llm = Llama(n_ctx=512, n_threads=2, verbose=False, logits_all=True, **kwargs)
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:length], dtype=np.float64)


adapted = logits(model_path=base, lora_path=lora)
folded = logits(model_path=merged)
alone = logits(model_path=base)
print(f"base + GGUF LoRA vs merged: max |logit difference| {np.abs(adapted - folded).max():.3e} "
      f"(base alone vs merged: {np.abs(alone - folded).max():.3e})")
