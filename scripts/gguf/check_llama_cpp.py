"""Runs a GGUF file written by `cargo run -p sft-export --example export_gguf -- MODEL_DIR OUT.gguf TYPE` through
llama.cpp itself (the llama-cpp-python bindings, which compile llama.cpp at install) and compares its logits at every
position of the reference batch's first row with the original Hugging Face model's (MODEL_DIR).

    /tmp/gguf-venv/bin/pip install llama-cpp-python torch==2.15.0 transformers==5.24.0 safetensors numpy
    /tmp/gguf-venv/bin/python scripts/gguf/check_llama_cpp.py MODEL_DIR OUT.gguf [--no-window]

`--no-window` compares with the original's sliding window switched off (llama.cpp's `llama` architecture has none).
"""

import sys

import numpy as np
import torch
from llama_cpp import Llama
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

model_dir, gguf_path = sys.argv[1], sys.argv[2]
reference = load_file(f"{model_dir}/reference.safetensors")
length = int(reference["attention_mask"][0].sum())
ids = reference["input_ids"][0][:length].tolist()

llm = Llama(model_path=gguf_path, logits_all=True, n_ctx=512, n_threads=2, verbose=False)
llm.reset()
llm.eval(ids)
ours = np.array(llm.scores[:length], dtype=np.float64)

original = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
if "--no-window" in sys.argv:
    original.config.sliding_window = None
    original = AutoModelForCausalLM.from_pretrained(model_dir, config=original.config, dtype=torch.float32).eval()
with torch.no_grad():
    theirs = original(torch.tensor([ids])).logits[0].double().numpy()
print(f"{model_dir.rstrip('/').split('/')[-1]} via llama.cpp ({gguf_path.split('/')[-1]}): "
      f"max |logit difference| over {length} positions {np.abs(ours - theirs).max():.3e}")
