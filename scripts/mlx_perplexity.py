#!/usr/bin/env python3
"""Perplexity of an MLX model folder under mlx_lm, by llama-perplexity's method (as `smelt
perplexity` computes it), on pre-tokenized ids so both tools score the same tokens.

    python scripts/mlx_perplexity.py MODEL_DIR --text FILE --ids-out IDS.bin [--ctx 512] [--chunks 4] [--bos ID]
    python scripts/mlx_perplexity.py MODEL_DIR --ids IDS.bin [--ctx 512] [--chunks 4] [--bos ID]

With --text, the text is tokenized by the folder's tokenizer (no special tokens added) and the
ids written to IDS.bin (little-endian int32) for `smelt perplexity --token-ids IDS.bin`. The ids
are cut into chunks of --ctx; --bos replaces each chunk's first token (give it when the model adds
BOS); the second half of each chunk is scored (token j+1 from the logits at j, j from ctx/2 to
ctx-2, log-softmax in float64). Prints one JSON line: ppl, its standard error, tokens scored.
The model runs in its own float type (an MLX folder saved with --dtype float32 runs in f32).
"""
import argparse
import json
import math

import mlx.core as mx
import numpy as np
from mlx_lm import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--text")
    ap.add_argument("--ids-out")
    ap.add_argument("--ids")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--bos", type=int)
    a = ap.parse_args()
    model, tokenizer = load(a.model)
    if a.text:
        with open(a.text, encoding="utf-8") as f:
            ids = tokenizer.encode(f.read(), add_special_tokens=False)
        np.array(ids, dtype="<i4").tofile(a.ids_out)
    else:
        ids = np.fromfile(a.ids, dtype="<i4").tolist()
    nll = []
    for c in range(min(a.chunks, len(ids) // a.ctx)):
        chunk = list(ids[c * a.ctx:(c + 1) * a.ctx])
        if a.bos is not None:
            chunk[0] = a.bos
        logits = model(mx.array([chunk]))[0].astype(mx.float32)
        mx.eval(logits)
        rows = np.array(logits).astype(np.float64)
        for j in range(a.ctx // 2, a.ctx - 1):
            row = rows[j]
            m = row.max()
            lse = m + math.log(np.exp(row - m).sum())
            nll.append(lse - row[chunk[j + 1]])
    n = np.array(nll)
    ppl = math.exp(n.mean())
    err = ppl * math.sqrt(max(n.var(), 0) / (len(n) - 1)) if len(n) > 1 else float("nan")
    print(json.dumps({"ppl": ppl, "ppl_error": err, "tokens_scored": len(n), "chunks": len(n) // (a.ctx // 2 - 1)}))


if __name__ == "__main__":
    main()
