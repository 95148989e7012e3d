"""Checks the TEMPLATE of the Ollama Modelfiles sft writes against the model's own chat template: for each model
directory, the Modelfile (`cargo run -p sft-export --example modelfile`) is rendered by Go's text/template as Ollama
fills it (scripts/ollama/render.go) and the Jinja chat template by transformers (`apply_chat_template` with the
generation prompt), for conversations with and without a system message and with earlier turns. The Jinja text's
leading BOS is dropped: llama.cpp adds BOS itself (`tokenizer.ggml.add_bos_token`).

    apt-get install golang-go        # Go's text/template is what Ollama runs
    /tmp/gguf-venv/bin/pip install transformers trl
    /tmp/gguf-venv/bin/python scripts/ollama/check_templates.py MODEL_DIR[:TRL_TEMPLATE] ...

`MODEL_DIR:llama3` checks the template trl ships as `trl/chat_templates/llama3.jinja` (the families' Hub templates,
kept verbatim) with MODEL_DIR's tokenizer, for formats no fixture carries; `MODEL_DIR:PATH.jinja` a template file.

Prints, per model, how many conversations render the same, and the first difference.
"""

import importlib.resources
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from transformers import AutoTokenizer

CONVERSATIONS = [
    [{"role": "user", "content": "Draft a confidentiality clause."}],
    [{"role": "system", "content": "You are a careful legal drafting assistant."},
     {"role": "user", "content": "Draft a confidentiality clause."}],
    [{"role": "user", "content": "Draft a confidentiality clause."},
     {"role": "assistant", "content": "The Supplier shall keep all Confidential Information confidential."},
     {"role": "user", "content": "Make it mutual."}],
    [{"role": "system", "content": "Answer in one sentence."},
     {"role": "user", "content": "What is a non-compete?"},
     {"role": "assistant", "content": "A promise not to compete."},
     {"role": "user", "content": "For how long?\nBe brief."}],
]

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failed = False
with tempfile.TemporaryDirectory() as tmp:
    conversations = os.path.join(tmp, "conversations.json")
    with open(conversations, "w") as f:
        json.dump(CONVERSATIONS, f)
    for arg in sys.argv[1:]:
        model_dir, _, trl_template = arg.partition(":")
        name = os.path.basename(model_dir.rstrip("/")) + (f" with trl's {trl_template}" if trl_template else "")
        modelfile = os.path.join(tmp, "Modelfile")
        command = ["cargo", "run", "-q", "-p", "sft-export", "--example", "modelfile", "--", model_dir]
        jinja_text = None
        if trl_template:
            path = (pathlib.Path(trl_template) if trl_template.endswith(".jinja")
                    else importlib.resources.files("trl") / "chat_templates" / f"{trl_template}.jinja")
            jinja_text = path.read_text()
            command.append(str(path))
        text = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout
        with open(modelfile, "w") as f:
            f.write(text)
        if not text.split("\n")[1].startswith("TEMPLATE"):
            print(f"{name}: no TEMPLATE ({text.splitlines()[1]})")
            continue
        go = subprocess.run(["go", "run", os.path.join(root, "scripts", "ollama", "render.go"), modelfile,
                             conversations], check=True, capture_output=True, text=True).stdout
        ollama = json.loads(go)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        same = refused = 0
        for conversation, ours in zip(CONVERSATIONS, ollama):
            try:
                jinja = tokenizer.apply_chat_template(conversation, chat_template=jinja_text, tokenize=False,
                                                      add_generation_prompt=True)
            except Exception as e:  # a template that refuses the conversation (e.g. no system role)
                print(f"  {name}: the chat template refuses {[m['role'] for m in conversation]}: {e}")
                refused += 1
                continue
            if tokenizer.bos_token and jinja.startswith(tokenizer.bos_token):
                jinja = jinja[len(tokenizer.bos_token):]
            if jinja == ours:
                same += 1
            else:
                failed = True
                print(f"  {name}, roles {[m['role'] for m in conversation]}:\n    jinja  {jinja!r}\n    ollama {ours!r}")
        refusals = f" ({refused} refused by the chat template)" if refused else ""
        print(f"{name}: {same} of {len(CONVERSATIONS) - refused} conversations render the same{refusals}")
sys.exit(1 if failed else 0)
