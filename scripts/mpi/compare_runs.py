"""Compares two `sft train` output directories: the history of training losses, gradient norms and learning rates
(bit for bit), the evaluation losses (within 1e-6 relative: sharded evaluation sums in f64 where one process sums
in f32), the final step and the adapter's bytes. Exits 1 on a difference. Standard library only.

    python3 scripts/mpi/compare_runs.py ONE_DIR TWO_DIR [--relative 1e-6]
"""

import json
import os
import sys

one, two = sys.argv[1], sys.argv[2]
relative = float(sys.argv[sys.argv.index("--relative") + 1]) if "--relative" in sys.argv else 0.0
state = [json.load(open(os.path.join(d, "trainer_state.json"))) for d in (one, two)]
failed = []
for key in ["loss", "grad_norm", "learning_rate", "eval_loss"]:
    a, b = ([e[key] for e in s["log_history"] if key in e] for s in state)
    tolerance = 1e-6 if key == "eval_loss" else relative
    worst = max((abs(x - y) / max(abs(y), 1e-30) for x, y in zip(a, b)), default=0.0)
    same = len(a) == len(b) and worst <= tolerance
    print(f"  {key}: {len(a)} values, max relative difference {worst:.2e}{'' if same else '  <-- DIFFERS'}")
    if not same:
        failed.append(key)
steps = [s["global_step"] for s in state]
print(f"  global_step: {steps[0]} / {steps[1]}; world_size {state[0].get('world_size', 1)} / {state[1].get('world_size', 1)}")
if steps[0] != steps[1]:
    failed.append("global_step")
adapters = [open(os.path.join(d, "adapter_model.safetensors"), "rb").read() for d in (one, two)]
print(f"  adapter_model.safetensors: {'identical bytes' if adapters[0] == adapters[1] else 'DIFFERENT bytes'}")
if adapters[0] != adapters[1] and relative == 0.0:
    failed.append("adapter")
if failed:
    print(f"{one} and {two} differ: {', '.join(failed)}")
    sys.exit(1)
