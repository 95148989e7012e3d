"""Loads a GGUF file written by `cargo run -p sft-export --example export_gguf -- MODEL_DIR OUT.gguf TYPE` with
transformers' GGUF loader (which dequantizes it into a torch model) and compares its logits on the reference batch
with the original Hugging Face model's (MODEL_DIR, which sft-model matches within 1e-5).

    python3 -m venv /tmp/gguf-venv
    /tmp/gguf-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate gguf numpy safetensors
    /tmp/gguf-venv/bin/python scripts/gguf/check_export.py MODEL_DIR OUT.gguf [--adapter ADAPTER_DIR]

With `--adapter` (a file from `sft export gguf --adapter ADAPTER_DIR --base MODEL_DIR`), the reference is the base
with the PEFT adapter merged by PEFT itself (`pip install peft`).

Prints the largest logit difference over real positions. Two limits of transformers' GGUF loader are worked
around here, not in the file: it ignores `qwen3.attention.key_length` (so a Qwen3 whose head_dim is not 128 gets the
default), so the config's head_dim is set from that key; it drops `rope.dimension_count` (Phi-3's partial rotary),
so `partial_rotary_factor` is set from it; it drops Phi-3's longrope factors, set from `rope_factors_long` /
`rope_factors_short` and their keys; it keeps Gemma 3's default `query_pre_attn_scalar` of 256 where
llama.cpp scales by `head_dim` (which the export requires), so that is set to head_dim; and it loads llama.cpp's `llama` architecture without a
sliding window (as llama.cpp runs it), so a Mistral export is also compared with the original with the window off.
"""

import os
import sys

import torch
from safetensors.torch import load_file
from gguf import GGUFReader
from transformers import AutoConfig, AutoModelForCausalLM

model_dir, gguf_path = sys.argv[1], sys.argv[2]
adapter = sys.argv[sys.argv.index("--adapter") + 1] if "--adapter" in sys.argv else None


def reference_model(config=None):
    model = AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval()


torch.manual_seed(0)
reference = load_file(os.path.join(model_dir, "reference.safetensors"))
ids, mask = reference["input_ids"], reference["attention_mask"]
original = reference_model()
where, name = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
config = AutoConfig.from_pretrained(where, gguf_file=name)
fields = GGUFReader(gguf_path).fields
arch = bytes(fields["general.architecture"].parts[-1]).decode()
key_length = fields.get(f"{arch}.attention.key_length")
if key_length is not None:
    config.head_dim = int(key_length.parts[-1][0])
# The loader drops rope.dimension_count: Phi-3's partial rotary comes back as the default (all of head_dim).
rotary = fields.get(f"{arch}.rope.dimension_count")
if arch == "phi3" and rotary is not None:
    factor = int(rotary.parts[-1][0]) / (config.hidden_size // config.num_attention_heads)
    config.partial_rotary_factor = factor
    if isinstance(getattr(config, "rope_parameters", None), dict):
        config.rope_parameters["partial_rotary_factor"] = factor
# The loader drops longrope (Phi-3's long-context factors): they come back from their tensors and keys.
tensors = {t.name: t for t in GGUFReader(gguf_path).tensors}
if "rope_factors_long.weight" in tensors:
    original_context = int(fields[f"{arch}.rope.scaling.original_context_length"].parts[-1][0])
    config.original_max_position_embeddings = original_context
    config.rope_parameters.update({
        "rope_type": "longrope",
        "long_factor": [float(v) for v in tensors["rope_factors_long.weight"].data],
        "short_factor": [float(v) for v in tensors["rope_factors_short.weight"].data],
        "original_max_position_embeddings": original_context,
        "attention_factor": float(fields[f"{arch}.rope.scaling.attn_factor"].parts[-1][0]),
    })
# The loader keeps Gemma 3's default query_pre_attn_scalar (256); llama.cpp scales the scores by head_dim^-1/2 (as
# the export requires of the model), so the config follows llama.cpp.
if arch == "gemma3":
    config.query_pre_attn_scalar = config.head_dim
exported = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, config=config, dtype=torch.float32).eval()
real = mask.bool()
with torch.no_grad():
    b = exported(input_ids=ids, attention_mask=mask).logits
    a = original(input_ids=ids, attention_mask=mask).logits
    print(f"{os.path.basename(model_dir)} via {name} ({arch}): max |logit difference| {(a - b).abs()[real].max().item():.3e}")
    if arch == "llama" and getattr(original.config, "sliding_window", None):
        original.config.sliding_window = None
        plain = reference_model(original.config)
        a = plain(input_ids=ids, attention_mask=mask).logits
        print(f"  against the original with its sliding window off: {(a - b).abs()[real].max().item():.3e}")
