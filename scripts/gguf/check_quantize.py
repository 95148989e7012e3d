"""Quantizes our F32 export with llama.cpp's own quantizer (`llama_model_quantize`, through llama-cpp-python) and
compares every tensor's type and bytes with our export of the same model in that type:

    /tmp/gguf-venv/bin/python scripts/gguf/check_quantize.py MODEL-f32.gguf MODEL-q8_0.gguf q8_0
    /tmp/gguf-venv/bin/python scripts/gguf/check_quantize.py MODEL-f32.gguf MODEL-q4_0.gguf q4_0
    /tmp/gguf-venv/bin/python scripts/gguf/check_quantize.py MODEL-f32.gguf MODEL-q4_k_m.gguf q4_k_m

A tensor whose type differs from llama.cpp's choice is reported as such, apart from byte differences.
"""

import ctypes
import os
import sys
import tempfile

import llama_cpp.llama_cpp as llama_api
import numpy as np
from gguf import GGUFReader

f32_path, ours_path, kind = sys.argv[1], sys.argv[2], sys.argv[3]
ftype = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15}[kind]
with tempfile.TemporaryDirectory() as tmp:
    theirs_path = os.path.join(tmp, "theirs.gguf")
    params = llama_api.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    assert llama_api.llama_model_quantize(f32_path.encode(), theirs_path.encode(), ctypes.byref(params)) == 0
    theirs = {t.name: t for t in GGUFReader(theirs_path).tensors}
    same = differ = other = 0
    for t in GGUFReader(ours_path).tensors:
        u = theirs[t.name]
        if t.tensor_type != u.tensor_type:
            other += 1
            print(f"  {t.name}: ours {t.tensor_type.name}, llama.cpp's {u.tensor_type.name}")
        elif np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(u.data).view(np.uint8)):
            same += 1
        else:
            differ += 1
            print(f"  {t.name}: {t.tensor_type.name} bytes differ")
print(f"{os.path.basename(ours_path)} vs llama.cpp's {kind}: same bytes {same}, different bytes {differ}, "
      f"other type {other}")
