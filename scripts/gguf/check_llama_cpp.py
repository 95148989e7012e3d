"""Runs a GGUF file written by `cargo run -p sft-export --example export_gguf -- MODEL_DIR OUT.gguf TYPE` through
llama.cpp itself (the llama-cpp-python bindings, which compile llama.cpp at install) and compares its logits at every
position of the reference batch's first row with the original Hugging Face model's (MODEL_DIR).

    /tmp/gguf-venv/bin/pip install llama-cpp-python torch==2.15.0 transformers==5.24.0 safetensors numpy
    /tmp/gguf-venv/bin/python scripts/gguf/check_llama_cpp.py MODEL_DIR OUT.gguf [--no-window]

`--no-window` compares with the original's sliding window switched off (llama.cpp's `llama` architecture has none).
It also tokenizes a set of texts (spaces, newlines, digits, characters outside the vocabulary, a special token) with
llama.cpp's tokenizer from the file and with the model directory's `tokenizer.json` (through `tokenizers`, the library
sft-tokenize runs, so what training saw), and prints how many agree.
"""

import sys

import llama_cpp.llama_cpp as llama_api
import numpy as np
import torch
from llama_cpp import Llama
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

TEXTS = [
    "Hello world",
    "The Licensee shall pay the Licensor a non-compete fee of $25,000.",
    "  two  spaces, then\tone tab",
    "line one\nline two\n\n  indented",
    "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F642 \u2014 quotes \u201cso\u201d",
    "12345 67.89 -0.5e10, in 2024: 1234567 items",
    "Don't SHOUT, we'LL see; it's O'Neil's",
    " leading space",
    "trailing space ",
    "</s> after a special token",
    "",
]

model_dir, gguf_path = sys.argv[1], sys.argv[2]
reference = load_file(f"{model_dir}/reference.safetensors")
length = int(reference["attention_mask"][0].sum())
ids = reference["input_ids"][0][:length].tolist()

# llama.cpp's CPU weight repacking (its AMX / AVX-512 layouts for Q8_0 and Q4_0) crashes on the micro models'
# 64-wide quantized matrices (on an Intel Xeon with AMX; files from llama.cpp's own quantizer too): switched off.
_defaults = llama_api.llama_model_default_params


def _no_repack():
    params = _defaults()
    params.use_extra_bufts = False
    return params


llama_api.llama_model_default_params = _no_repack
llm = Llama(model_path=gguf_path, logits_all=True, n_ctx=512, n_threads=2, verbose=False)
hf = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
same = 0
for text in TEXTS:
    theirs, ours = hf.encode(text).ids, llm.tokenize(text.encode(), add_bos=True, special=True)
    same += theirs == ours
    if theirs != ours:
        print(f"  tokenization differs for {text!r}:\n    tokenizers {theirs}\n    llama.cpp  {ours}")
print(f"tokenization: {same} of {len(TEXTS)} texts equal")
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
