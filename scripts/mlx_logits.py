#!/usr/bin/env python3
"""Logits of an MLX model folder as mlx_lm computes them, for Smelt's client checks.

    python scripts/mlx_logits.py MODEL_DIR OUT_PREFIX (--text TEXT | --ids 1,2,3) [--f32]

Loads MODEL_DIR with mlx_lm (quantized layers as mlx_lm builds them from config.json), runs one
forward pass over the tokens (TEXT through the folder's tokenizer, no special tokens added, or
the given ids) and writes OUT_PREFIX.f32 (rows × vocab little-endian f32) and OUT_PREFIX.json
({"ids": [...], "shape": [rows, vocab]}). --f32 casts the model's float parameters (scales,
biases, norms, any unquantized weights) to float32 first, so the products run in f32 as Smelt's
do; without it mlx computes in the folder's own float type.

Needs `pip install "mlx[cpu]" mlx-lm` (no torch). Used by Tests/EvaluatorTests/MLXClientTests
when SMELT_MLX_PYTHON names that interpreter.
"""
import argparse
import json
import sys

import mlx.core as mx
import numpy as np
from mlx_lm import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--text")
    ap.add_argument("--ids")
    ap.add_argument("--f32", action="store_true")
    a = ap.parse_args()
    model, tokenizer = load(a.model)
    if a.f32:
        model.set_dtype(mx.float32)
    if a.ids:
        ids = [int(x) for x in a.ids.split(",")]
    elif a.text is not None:
        ids = tokenizer.encode(a.text, add_special_tokens=False)
    else:
        sys.exit("give --text or --ids")
    logits = model(mx.array([ids]))[0].astype(mx.float32)
    mx.eval(logits)
    out = np.array(logits)
    out.astype("<f4").tofile(a.out + ".f32")
    with open(a.out + ".json", "w") as f:
        json.dump({"ids": ids, "shape": list(out.shape)}, f)


if __name__ == "__main__":
    main()
