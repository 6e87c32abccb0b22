#!/usr/bin/env python3
"""Checks a GPTQ or compressed-tensors folder smelt wrote against the real implementations.

    PY check_packed_clients.py FOLDER DECODED.safetensors

FOLDER is smelt's output (`smelt quantize --format …` or `smelt convert … --format …`);
DECODED is what smelt decodes it to (`smelt convert FOLDER DECODED.safetensors --format hf`).
PY needs torch, safetensors, numpy and, for compressed-tensors folders, the compressed-tensors
package (it is not in CI: this script is run by hand, see the README).

compressed-tensors: the config is validated by compressed_tensors' own QuantizationConfig, and
every module is decompressed by its PackedQuantizationCompressor.decompress — once with the
scales as stored (f16: the package computes in the scale's type, so smelt's f32 values are
compared after rounding to f16) and once with the scales widened to f32 (compared exactly).
GPTQ: every module is unpacked with GPTQModel's documented formulas (utils/model_dequant.py:
unpack_rows / unpack_cols, v1 zeros + 1 modulo 2^bits, (q - zeros[g_idx]) * scales[g_idx]) and
compared exactly; transformers' GPTQConfig must accept the quantization_config.
Exit status 0 when every module agrees, 1 otherwise.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file


def load_folder(folder):
    tensors = {}
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else \
        [f for f in sorted(os.listdir(folder)) if f.endswith(".safetensors")]
    for f in files:
        tensors.update(load_file(os.path.join(folder, f)))
    return tensors


def gptq_unpack(t, m, q):
    bits = q["bits"]
    per = 32 // bits
    mask = (1 << bits) - 1
    qw = t[m + ".qweight"].view(np.uint32).astype(np.int64)
    qz = t[m + ".qzeros"].view(np.uint32).astype(np.int64)
    w = np.empty((qw.shape[0] * per, qw.shape[1]), np.int64)
    for i in range(per):
        w[i::per, :] = (qw >> (i * bits)) & mask
    z = np.empty((qz.shape[0], qz.shape[1] * per), np.int64)
    for i in range(per):
        z[:, i::per] = (qz >> (i * bits)) & mask
    if (q.get("checkpoint_format") or q.get("format") or "gptq") == "gptq":
        z = (z + 1) & mask
    g = t[m + ".g_idx"].astype(np.int64)
    s = t[m + ".scales"].astype(np.float32)
    return ((w.astype(np.float32) - z.astype(np.float32)[g]) * s[g]).T


def main():
    folder, decoded_path = sys.argv[1], sys.argv[2]
    config = json.load(open(os.path.join(folder, "config.json")))
    q = config["quantization_config"]
    t = load_folder(folder)
    ours = load_file(decoded_path)
    bad = 0
    checked = 0
    if q["quant_method"] == "gptq":
        from transformers import GPTQConfig
        GPTQConfig.from_dict(dict(q))  # transformers accepts the settings
        for name in sorted(k for k in t if k.endswith(".qweight")):
            m = name[: -len(".qweight")]
            ref = gptq_unpack(t, m, q)
            mine = ours[m + ".weight"]
            checked += 1
            if ref.shape != mine.shape or not np.array_equal(ref, mine):
                bad += 1
                print(f"DIFFERS {m}: max |diff| {np.max(np.abs(ref - mine)) if ref.shape == mine.shape else 'shape'}")
        print(f"gptq: {checked} modules unpacked with GPTQModel's formulas, {checked - bad} identical to smelt's decode")
    elif q["quant_method"] == "compressed-tensors":
        import compressed_tensors
        from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
        from compressed_tensors.quantization import QuantizationConfig
        qc = QuantizationConfig.model_validate(q)
        assert len(qc.config_groups) == 1, "smelt writes one config group"
        scheme = next(iter(qc.config_groups.values()))
        rounded_bad = 0
        for name in sorted(k for k in t if k.endswith(".weight_packed")):
            m = name[: -len(".weight_packed")]
            state = {k: torch.from_numpy(t[m + "." + k]) for k in ("weight_packed", "weight_shape", "weight_scale", "weight_zero_point") if m + "." + k in t}
            native = PackedQuantizationCompressor.decompress(dict(state), scheme)["weight"]
            state["weight_scale"] = state["weight_scale"].to(torch.float32)
            wide = PackedQuantizationCompressor.decompress(dict(state), scheme)["weight"].numpy()
            mine = ours[m + ".weight"]
            checked += 1
            if wide.shape != mine.shape or not np.array_equal(wide, mine):
                bad += 1
                print(f"DIFFERS {m} (f32 scales)")
            if not torch.equal(native, torch.from_numpy(mine).to(native.dtype)):
                rounded_bad += 1
                print(f"DIFFERS {m} ({native.dtype} scales, as stored)")
        bad += rounded_bad
        print(f"compressed-tensors {compressed_tensors.__version__}: config validated; {checked} modules decompressed, "
              f"{checked - bad + rounded_bad} identical to smelt's decode with f32 scales, {checked - rounded_bad} with stored scales "
              f"(smelt's values rounded to their type)")
    else:
        sys.exit(f"{folder}: quant_method {q['quant_method']} is not checked here")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
