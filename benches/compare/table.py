"""Prints the comparison table (Markdown) of the JSON lines run.sh collected: python table.py RESULTS CPU_MODEL.

Per workload and side: the median over the rounds of non-pad tokens/s and of peak RSS; then sft-rs against the
faster of transformers' Trainer + PEFT and TRL's SFTTrainer in f32 (speed ratio, RSS ratio). For the LoRA linear:
the median of each round's median time.
"""

import json
import statistics
import sys
from collections import defaultdict


def main():
    path, cpu = sys.argv[1], sys.argv[2]
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            label = r["side"]
            if r["side"] == "sft-rs" and r["workload"] != "lora":
                label += f" ({r['micro_batch_workers']} worker{'s' if r['micro_batch_workers'] > 1 else ''})"
            if r.get("precision", "f32") != "f32":
                label += f" {r['precision']}"
            runs[(r["workload"], label)].append(r)
    print(f"CPU: {cpu}\n")
    print("| workload | side | non-pad tokens/s | peak RSS (MiB) | rounds |")
    print("|---|---|---:|---:|---:|")
    workloads = list(dict.fromkeys(w for w, _ in runs))
    summary = []
    for w in workloads:
        rows = {label: rs for (wl, label), rs in runs.items() if wl == w}
        if w == "lora":
            ms = {label: statistics.median(r["median_ms"] for r in rs) for label, rs in rows.items()}
            for label, rs in rows.items():
                print(f"| lora linear (ms, lower is better) | {label} | {ms[label]:.1f} ms | | {len(rs)} |")
            if "sft-rs" in ms and "PEFT" in ms:
                summary.append(f"lora linear: sft-rs {ms['sft-rs']:.1f} ms vs PEFT {ms['PEFT']:.1f} ms "
                               f"({ms['PEFT'] / ms['sft-rs']:.2f}x)")
            continue
        tps = {label: statistics.median(r["tokens_per_second"] for r in rs) for label, rs in rows.items()}
        rss = {label: statistics.median(r["peak_rss_mib"] for r in rs) for label, rs in rows.items()}
        for label, rs in rows.items():
            print(f"| {w} | {label} | {tps[label]:,.0f} | {rss[label]:,.0f} | {len(rs)} |")
        python = [l for l in ("transformers Trainer + PEFT", "TRL SFTTrainer") if l in tps]
        if not python:
            continue
        best = max(python, key=tps.get)
        for ours in [l for l in tps if l.startswith("sft-rs") and "bf16" not in l]:
            summary.append(f"{w}: {ours} {tps[ours] / tps[best]:.2f}x the speed of {best}, "
                           f"at {rss[ours] / rss[best]:.2f}x its peak RSS")
        for ours in [l for l in tps if l.startswith("sft-rs") and "bf16" in l]:
            f32 = ours.replace(" bf16", "")
            if f32 in tps:
                summary.append(f"{w}: {ours} {tps[ours] / tps[f32]:.2f}x the speed of {f32}")
        for theirs in [l for l in tps if "bf16" in l and not l.startswith("sft-rs")]:
            f32 = theirs.replace(" bf16", "")
            if f32 in tps:
                summary.append(f"{w}: {theirs} {tps[theirs] / tps[f32]:.2f}x the speed of {f32}")
    print()
    for line in summary:
        print(f"- {line}")


if __name__ == "__main__":
    main()
