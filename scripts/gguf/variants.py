"""Writes check-only variants of the fixtures' micro models, for the llama.cpp and transformers GGUF checks, into
OUT_DIR (the fixtures themselves stay as they are):

    python scripts/gguf/variants.py FIXTURES_DIR OUT_DIR

FIXTURES_DIR: crates/sft-model/tests/fixtures (or the reference fixtures the README names).

- gemma3-six: gemma3-micro with six layers (layers 4 and 5 copies of 0 and 1, in its PEFT adapter too) and llama.cpp's Gemma 3 layer
  pattern (every 6th layer global), which llama.cpp fixes; the fixture's pattern of 3 is refused by the export.
- phi3-end: phi3-micro whose tokenizer has Phi-3's `<|end|>` in place of its last reserved token (llama.cpp's Phi-3 vocabulary looks it up; real
  Phi-3 / Phi-4 tokenizers have it).
- phi3-longrope: phi3-end with Phi-3's long-context RoPE (`longrope`, as Phi-3-128k and Phi-4-mini), its
  pre-training context cut to 64 positions so that the reference batch (152 positions) takes the long factors.
- llama-wide, qwen2-wide: llama-micro (own head) and qwen2-micro (tied head) widened to rows of whole 256-value
  super-blocks and 8 layers, random weights, so that Q4_K_M's K-quants (not its fallbacks) apply.
- llama-spm, mistral-spm, gemma3-spm: llama-micro, mistral-micro and gemma3-six with a SentencePiece-style tokenizer
  (BPE with byte_fallback, `<0xXX>` byte tokens), trained here with `tokenizers` on data/legal_clauses/train.csv, in
  the three forms such tokenizers take: Llama 2's legacy Prepend("▁") normalizer, Mistral's Metaspace
  pre-tokenizer, Gemma's plain space replacement (no prefix).
Needs torch-free packages only: safetensors, numpy, tokenizers.
"""

import csv
import json
import os
import shutil
import sys

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

fixtures, out = sys.argv[1], sys.argv[2]
SPACE = "\u2581"


def copy(name, to):
    target = os.path.join(out, to)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(os.path.join(fixtures, name), target, ignore=shutil.ignore_patterns("peft_adapter"))
    return target


def edit_json(path, change):
    value = {}
    if os.path.exists(path):
        with open(path) as f:
            value = json.load(f)
    change(value)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)


# gemma3-six
six = copy("gemma3-micro", "gemma3-six")
weights = load_file(os.path.join(six, "model.safetensors"))
for source, target in [(0, 4), (1, 5)]:
    prefix = f"model.layers.{source}."
    for key in [k for k in weights if k.startswith(prefix)]:
        weights[f"model.layers.{target}." + key[len(prefix):]] = weights[key].copy()
save_file(weights, os.path.join(six, "model.safetensors"), metadata={"format": "pt"})
# Its PEFT adapter, with layers 4 and 5 likewise copies of 0 and 1.
shutil.copytree(os.path.join(fixtures, "gemma3-micro", "peft_adapter"), os.path.join(six, "peft_adapter"))
factors = load_file(os.path.join(six, "peft_adapter", "adapter_model.safetensors"))
for source, target in [(0, 4), (1, 5)]:
    prefix = f".layers.{source}."
    for key in [k for k in factors if prefix in k]:
        factors[key.replace(prefix, f".layers.{target}.")] = factors[key].copy()
save_file(factors, os.path.join(six, "peft_adapter", "adapter_model.safetensors"), metadata={"format": "pt"})


def six_layers(config):
    config["num_hidden_layers"] = 6
    config["layer_types"] = ["sliding_attention"] * 5 + ["full_attention"]
    config["sliding_window_pattern"] = 6
    config["_sliding_window_pattern"] = 6


edit_json(os.path.join(six, "config.json"), six_layers)

# phi3-end
end = copy("phi3-micro", "phi3-end")


def add_end(tokenizer):
    # Every embedding row has a token already: the last reserved special token becomes <|end|>.
    last = max((t for t in tokenizer["added_tokens"] if t["content"].startswith("<|reserved")), key=lambda t: t["id"])
    last["content"] = "<|end|>"


edit_json(os.path.join(end, "tokenizer.json"), add_end)

# phi3-longrope: Phi-3's long-context RoPE (Phi-3-128k, Phi-4-mini) on phi3-micro, pre-training context 64.
longrope = copy("phi3-micro", "phi3-longrope")
edit_json(os.path.join(longrope, "tokenizer.json"), add_end)


def long_context(config):
    scaling = {"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.7], "long_factor": [1.5, 2.5, 4.0, 8.0],
               "original_max_position_embeddings": 64}
    config["original_max_position_embeddings"] = 64
    config["rope_parameters"].update(scaling)
    config["rope_scaling"] = dict(scaling, type="longrope")


edit_json(os.path.join(longrope, "config.json"), long_context)

# SentencePiece-style tokenizers
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(root, "data", "legal_clauses", "train.csv"), newline="") as f:
    texts = [" ".join(row.values()) for row in csv.DictReader(f)]


def spm_tokenizer(form):
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Training splits at spaces as SentencePiece does (pieces start with ▁ and never cross a space).
    tokenizer.normalizer = normalizers.Replace(" ", SPACE)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    # A small alphabet, so that rarer characters take the byte fallback.
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, limit_alphabet=60, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    if form == "llama":
        tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
        tokenizer.pre_tokenizer = None
        strip = [decoders.Strip(" ", 1, 0)]
    elif form == "mistral":
        tokenizer.normalizer = None
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first", split=False)
        strip = [decoders.Strip(" ", 1, 0)]
    else:
        tokenizer.normalizer = normalizers.Replace(" ", SPACE)
        tokenizer.pre_tokenizer = None
        strip = []
    tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
                                          + strip)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    value = json.loads(tokenizer.to_str())
    # Byte tokens are vocabulary entries, not added tokens, in SentencePiece conversions.
    value["added_tokens"] = [t for t in value["added_tokens"] if not t["content"].startswith("<0x")]
    return value


for name, form, to in [("llama-micro", "llama", "llama-spm"), ("mistral-micro", "mistral", "mistral-spm"),
                       (None, "gemma", "gemma3-spm")]:
    target = copy(name, to) if name else shutil.copytree(six, os.path.join(out, to), dirs_exist_ok=True)
    with open(os.path.join(target, "tokenizer.json"), "w") as f:
        json.dump(spm_tokenizer(form), f, ensure_ascii=False)

    def settings(config):
        config.update({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
                       "add_bos_token": True, "add_eos_token": False, "tokenizer_class": "LlamaTokenizerFast",
                       "legacy": form == "llama"})
        config.pop("added_tokens_decoder", None)

    edit_json(os.path.join(target, "tokenizer_config.json"), settings)


def widen(name, to, tied):
    """`name` with rows of whole 256-value super-blocks (hidden 256, intermediate 512, head_dim 64) and 8 layers,
    random weights (normal, sd 0.02; norms 1 + normal 0.1): llama.cpp's K-quants apply to its matrices."""
    target = copy(name, to)
    hidden, inter, layers, head_dim = 256, 512, 8, 64
    with open(os.path.join(target, "config.json")) as f:
        config = json.load(f)
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    vocab = config["vocab_size"]
    shapes = {"embed_tokens.weight": [vocab, hidden], "lm_head.weight": [vocab, hidden], "norm.weight": [hidden],
              "input_layernorm.weight": [hidden], "post_attention_layernorm.weight": [hidden],
              "q_proj.weight": [heads * head_dim, hidden], "k_proj.weight": [kv * head_dim, hidden],
              "v_proj.weight": [kv * head_dim, hidden], "o_proj.weight": [hidden, heads * head_dim],
              "q_proj.bias": [heads * head_dim], "k_proj.bias": [kv * head_dim], "v_proj.bias": [kv * head_dim],
              "gate_proj.weight": [inter, hidden], "up_proj.weight": [inter, hidden],
              "down_proj.weight": [hidden, inter]}
    rng = np.random.default_rng(11)
    old = load_file(os.path.join(target, "model.safetensors"))
    names = [k for k in old if ".layers." not in k or ".layers.0." in k]
    if tied:
        names = [k for k in names if not k.startswith("lm_head")]
    elif "lm_head.weight" not in names:
        names.append("lm_head.weight")
    weights = {}
    for key in names:
        shape = shapes[".".join(key.split(".")[-2:])]
        for layer in range(layers) if ".layers.0." in key else [None]:
            if key.endswith("norm.weight"):
                value = 1.0 + rng.normal(0, 0.1, shape)
            else:
                value = rng.normal(0, 0.02, shape)
            weights[key if layer is None else key.replace(".layers.0.", f".layers.{layer}.")] = value.astype(np.float32)
    save_file(weights, os.path.join(target, "model.safetensors"), metadata={"format": "pt"})

    def wider(config):
        config.update({"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
                       "head_dim": head_dim, "tie_word_embeddings": tied})
        if "layer_types" in config:
            config["layer_types"] = [config["layer_types"][0]] * layers
        if "max_window_layers" in config:
            config["max_window_layers"] = layers

    edit_json(os.path.join(target, "config.json"), wider)


# llama-wide, qwen2-wide: rows of whole super-blocks (Q4_K_M's K-quants), an own head and a tied one.
widen("llama-micro", "llama-wide", tied=False)
widen("qwen2-micro", "qwen2-wide", tied=True)
print("written:", ", ".join(sorted(os.listdir(out))))
