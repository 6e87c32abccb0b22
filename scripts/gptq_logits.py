#!/usr/bin/env python3
"""Logits of a GPTQ folder as transformers + GPTQModel compute them, for Smelt's client checks.

    python scripts/gptq_logits.py MODEL_DIR OUT_PREFIX (--text TEXT | --ids 1,2,3) [--dtype float32|float16|bfloat16] [--backend NAME] [--f32-scales]

Loads MODEL_DIR with transformers' AutoModelForCausalLM.from_pretrained(..., device_map="cpu")
(transformers hands the quantization_config to GPTQModel, which builds its CPU kernel for each
quantized linear layer), runs one forward pass over the tokens (TEXT through the folder's
tokenizer, no special tokens added, or the given ids) and writes OUT_PREFIX.f32 (rows × vocab
little-endian f32) and OUT_PREFIX.json ({"ids": [...], "shape": [rows, vocab], "versions": ...,
"kernels": [...]}). --dtype (default float32) is the model's compute type. --backend (default
gptq_torch) is GPTQModel's kernel: gptq_torch dequantizes each weight to the model's dtype and
multiplies in it; `auto` lets GPTQModel choose (on this CPU, gptq_torch_aten: ATen's int4pack
kernel). GPTQModel's torch kernel dequantizes in the scales' own type (f16 as stored), so every
weight is scale × (code − zero) rounded to f16 before the product; --f32-scales widens the
scales to f32 after loading (no value changes), so each weight is the exact product, as Smelt
decodes it.

Needs torch, transformers and `pip install gptqmodel` (see the README for how it installs on a
CPU-only machine). Used by Tests/EvaluatorTests/GPTQClientTests when SMELT_GPTQ_PYTHON names
that interpreter.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTQConfig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--text")
    ap.add_argument("--ids")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--backend", default="gptq_torch")
    ap.add_argument("--f32-scales", action="store_true")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    settings = json.load(open(os.path.join(a.model, "config.json")))["quantization_config"]
    settings["backend"] = a.backend
    model = AutoModelForCausalLM.from_pretrained(
        a.model, device_map="cpu", dtype=dtype, quantization_config=GPTQConfig.from_dict(settings))
    model.eval()
    if a.ids:
        ids = [int(x) for x in a.ids.split(",")]
    elif a.text is not None:
        ids = AutoTokenizer.from_pretrained(a.model).encode(a.text, add_special_tokens=False)
    else:
        sys.exit("give --text or --ids")
    quantized = [m for m in model.modules() if hasattr(m, "qweight")]
    kernels = sorted({type(m).__name__ for m in quantized})
    if a.f32_scales:
        for m in quantized:
            m.scales.data = m.scales.data.to(torch.float32)
            m.__dict__.pop("dequantize_weight", None)  # the torch.compile'd one is specialised to f16
            if hasattr(m, "clear_weight_cache"):
                m.clear_weight_cache()
    if not kernels:
        sys.exit(f"{a.model}: no GPTQ quantized layer was built (transformers loaded it as floats?)")
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].to(torch.float32).numpy()
    logits.astype("<f4").tofile(a.out + ".f32")
    import gptqmodel
    with open(a.out + ".json", "w") as f:
        json.dump({"ids": ids, "shape": list(logits.shape), "kernels": kernels, "backend": a.backend, "f32_scales": a.f32_scales,
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                "gptqmodel": gptqmodel.__version__}}, f)


if __name__ == "__main__":
    main()
