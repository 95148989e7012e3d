"""The Python side of the side-by-side comparison (`benches/compare/run.sh`).

Trains on exactly what `cargo run --release --example compare -- prepare` wrote: the same checkpoint directory, the
same tokenized examples in the same order (a sequential sampler over them), the same LoRA (r, alpha, dropout, target
modules), AdamW with a linear schedule over the same number of steps, clipping at 1, right padding to the longest
example of each micro-batch with labels -100 on padding, fp32, evaluation and saving off. The timed window leaves out
the first `warmup_steps` optimizer steps. Prints one JSON line: non-pad tokens per second of the timed steps and the
process's peak RSS.

    python hf_train.py --dir DIR --trainer hf    # transformers' Trainer + PEFT
    python hf_train.py --dir DIR --trainer trl   # TRL's SFTTrainer (+ PEFT)
    python hf_train.py --dir DIR --bf16          # bf16 autocast instead of fp32
    python hf_train.py --lora                    # one 2048 x 2048 projection with LoRA r 16, forward + backward
"""

import argparse
import json
import os
import resource
import tempfile
import time


def peak_rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(args):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.dir, "workload.json")) as f:
        w = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(args.dir, "model"), dtype=torch.float32)
    lora = LoraConfig(
        r=w["r"],
        lora_alpha=w["lora_alpha"],
        lora_dropout=w["lora_dropout"],
        target_modules=w["target_modules"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    ga, batch = w["gradient_accumulation_steps"], w["per_device_train_batch_size"]
    steps = w["warmup_steps"] + w["timed_steps"]
    # Non-pad tokens of each optimizer step (its `ga` micro-batches of `batch` examples, in order).
    lengths = [len(ids) for ids in w["input_ids"]]
    per_step = [sum(lengths[s * ga * batch : (s + 1) * ga * batch]) for s in range(steps)]
    dataset = Dataset.from_dict({"input_ids": w["input_ids"], "labels": w["labels"]})
    marks = []

    class StepClock(TrainerCallback):
        def on_step_end(self, _args, state, _control, **_kwargs):
            marks.append(time.perf_counter())

    output = tempfile.mkdtemp(prefix="sft-compare-")
    common = dict(
        output_dir=output,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=ga,
        learning_rate=w["learning_rate"],
        max_steps=steps,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=w["max_grad_norm"],
        logging_steps=w["logging_steps"],
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        seed=w["seed"],
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        train_sampling_strategy="sequential",
        # --bf16: CPU autocast to bf16 (AMX on CPUs that have it), weights kept in f32.
        bf16=args.bf16,
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(args.dir, "model", "tokenizer.json"))
    tokenizer.pad_token_id = w["pad_token_id"]
    if args.trainer == "hf":
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        model = get_peft_model(model, lora)
        trainer = Trainer(
            model=model,
            args=TrainingArguments(remove_unused_columns=False, **common),
            train_dataset=dataset,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100),
            callbacks=[StepClock()],
        )
    else:
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(
                max_length=None,
                packing=False,
                padding_free=False,
                pad_token=tokenizer.convert_ids_to_tokens(w["pad_token_id"]),
                dataset_kwargs={"skip_prepare_dataset": True},
                **common,
            ),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[StepClock()],
        )
    trainer.train()
    warm = w["warmup_steps"]
    seconds = marks[steps - 1] - marks[warm - 1]
    tokens = sum(per_step[warm:steps])
    side = "transformers Trainer + PEFT" if args.trainer == "hf" else "TRL SFTTrainer"
    print(
        json.dumps(
            {
                "side": side,
                "workload": w["name"],
                "timed_steps": w["timed_steps"],
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_second": tokens / seconds,
                "peak_rss_mib": peak_rss_mib(),
                "threads": torch.get_num_threads(),
                "precision": "bf16" if args.bf16 else "f32",
            }
        )
    )


def lora_linear(args):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Projection(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(2048, 2048, bias=False)

        def forward(self, x):
            return self.proj(x)

    layer = get_peft_model(Projection(), LoraConfig(r=16, lora_alpha=32, target_modules=["proj"]))
    torch.nn.init.normal_(layer.base_model.model.proj.lora_B.default.weight, std=0.02)
    x = torch.randn(4, 512, 2048)
    times = []
    for i in range(args.iterations + 3):
        began = time.perf_counter()
        inp = x.clone().requires_grad_(True)
        layer(inp).sum().backward()
        checksum = inp.grad.sum().item()
        if i >= 3:
            times.append(time.perf_counter() - began)
    del checksum
    times.sort()
    print(
        json.dumps(
            {
                "side": "PEFT",
                "workload": "lora",
                "iterations": args.iterations,
                "median_ms": times[len(times) // 2] * 1e3,
                "threads": torch.get_num_threads(),
            }
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", help="a directory written by `compare prepare`")
    p.add_argument("--trainer", choices=["hf", "trl"], default="hf")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (CPU autocast)")
    p.add_argument("--lora", action="store_true", help="time one LoRA projection instead of training")
    p.add_argument("--iterations", type=int, default=10)
    args = p.parse_args()
    if args.lora:
        lora_linear(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
