"""Reads the GGUF file written by `cargo run -p sft-gguf --example gguf_sample -- OUT.gguf` with llama.cpp's
Python `gguf` package and checks every metadata value and tensor against what the example wrote.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf numpy
    cargo run -p sft-gguf --example gguf_sample -- /tmp/sample.gguf
    /tmp/gguf-venv/bin/python scripts/gguf/check_sample.py /tmp/sample.gguf

Prints the largest difference per tensor type between gguf's dequantized values and 3 sin(0.37 i) in float32, and
whether gguf's own quantizer produces the same bytes (F16, BF16, Q8_0, Q4_0, Q5_0; it has none for the K-quants,
which crates/sft-gguf/tests/fixtures/kquants.gguf checks against ggml's own), also for the `big.*` tensors (65,536
hashed values each, a zero block and a tie of magnitudes among them).
"""

import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType, quants

reader = GGUFReader(sys.argv[1])
fields = {name: field for name, field in reader.fields.items()}


def scalar(name):
    field = fields[name]
    return field.parts[field.data[0]].tolist()[0]


def string(name, index=0):
    field = fields[name]
    return bytes(field.parts[field.data[index]]).decode("utf-8")


expected = {
    "sample.u8": 200, "sample.i8": -5, "sample.u16": 60000, "sample.i16": -30000, "sample.u32": 4_000_000_000,
    "sample.i32": -2_000_000_000, "sample.bool": True, "sample.u64": 1 << 40, "sample.i64": -(1 << 40),
}
for name, value in expected.items():
    assert scalar(name) == value, (name, scalar(name))
assert abs(scalar("sample.f32") - np.float32(0.1)) == 0
assert scalar("sample.f64") == 0.1
assert string("general.architecture") == "llama"
assert string("sample.string") == "naïve ☕"
assert [string("sample.strings", i) for i in range(3)] == ["<s>", "Ġthe", ""]
assert [fields["sample.i32s"].parts[i].tolist()[0] for i in fields["sample.i32s"].data] == [1, 3, 6]
assert len(fields["sample.empty"].data) == 0
print(f"metadata: {len(fields)} fields read, all equal")

small = (np.sin(np.arange(3 * 256, dtype=np.float32) * np.float32(0.37)) * np.float32(3.0)).astype(np.float32)
small = small.reshape(3, 256)
index = np.arange(256 * 512, dtype=np.uint64)
big = (((index * np.uint64(2654435761)) % np.uint64(1 << 32)).astype(np.float32) / np.float32(1 << 31)
       - np.float32(1.0)).astype(np.float32)
big[:32] = 0.0
big[32:64] *= np.float32(0.5)
big[40], big[50] = 0.9, -0.9
big = big.reshape(256, 512)
for tensor in reader.tensors:
    kind = GGMLQuantizationType(tensor.tensor_type)
    shape = [int(d) for d in reversed(tensor.shape.tolist())]
    expected_shape = [256, 512] if tensor.name.startswith("big.") else [3, 256]
    assert shape == expected_shape, (tensor.name, shape)
    values = big if tensor.name.startswith("big.") else small
    ours = quants.dequantize(tensor.data, kind).reshape(shape)
    error = float(np.abs(ours - values).max())
    same = ""
    if kind != GGMLQuantizationType.F32:
        try:
            theirs = quants.quantize(values, kind)
        except NotImplementedError:
            print(f"{tensor.name}: {kind.name} {shape}, max |dequantized - values| {error:.3e} (gguf has no quantizer)")
            continue
        same = f", gguf's quantizer gives the same bytes: {np.array_equal(theirs.view(np.uint8).ravel(), np.asarray(tensor.data).view(np.uint8).ravel())}"
    print(f"{tensor.name}: {kind.name} {shape}, max |dequantized - values| {error:.3e}{same}")
