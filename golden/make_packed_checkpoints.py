#!/usr/bin/env python3
"""Makes golden/packed/: the tiny Llama (golden/tiny/llama) as packed-integer checkpoints of the
other ecosystems, each with the values the reference implementations decode them to.

    <venv with torch + compressed-tensors>/bin/python golden/make_packed_checkpoints.py

Every linear layer (q/k/v/o/gate/up/down) is quantized round-to-nearest here (numpy) and packed
as each flavour stores it; `<folder>.expected.safetensors` beside each folder holds `<module>.weight` as f32,
decoded by:
  - compressed-tensors folders: compressed_tensors' own PackedQuantizationCompressor.decompress
    (the installed package; scales passed as f32 so the reference product is not rounded to f16),
  - AWQ: AutoAWQ's awq/utils/packing_utils.py dequantize_gemm (loaded from the sdist at
    $AWQ_SRC, torch only),
  - GPTQ: GPTQModel's documented unpacking (utils/model_dequant.py: unpack_rows / unpack_cols,
    v1 zeros corrected by +1 modulo 2^bits, weight = (q - zeros[g_idx]) * scales[g_idx]),
    written out below in numpy because importing gptqmodel pulls in its whole runtime.
The packing itself follows each project's packer (GPTQ: codes along the input dimension, first
in the low bits; compressed-tensors: pack_to_int32 from the package; AWQ: the GEMM nibble order
[0, 2, 4, 6, 1, 3, 5, 7]).
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(ROOT, "tiny", "llama")
OUT = os.path.join(ROOT, "packed")
SEED = 20261201
AWQ_SRC = os.environ.get("AWQ_SRC", "/work/scratch/g6-gptq-formats/wheels/x/autoawq-0.2.9")

rng = np.random.default_rng(SEED)
weights = load_file(os.path.join(SRC, "model.safetensors"))
config = json.load(open(os.path.join(SRC, "config.json")))
LINEARS = [k[: -len(".weight")] for k in weights if k.endswith("_proj.weight")]


def coarse(s):
    """Scales cut to 7 significant bits, so -scale * zero (zero < 16) is an f16 value (Q4_1-exact)."""
    m, e = np.frexp(s)
    return np.ldexp(np.round(m * 128) / 128, e)


def rtn(w, bits, group_of_col, groups, sym, coarse_scales=False):
    """codes [out, in] (unsigned), scales [out, groups] f16, zeros [out, groups] (unsigned)."""
    out, inn = w.shape
    maxq = 2**bits - 1
    mid = 2 ** (bits - 1)
    codes = np.zeros((out, inn), np.int64)
    scales = np.zeros((out, groups), np.float16)
    zeros = np.zeros((out, groups), np.int64)
    for g in range(groups):
        cols = np.nonzero(group_of_col == g)[0]
        wg = w[:, cols].astype(np.float64)
        if sym:
            s = np.maximum(np.abs(wg).max(1), 1e-8) / (mid - 1)
            z = np.full(out, mid)
        else:
            lo = np.minimum(wg.min(1), 0)
            hi = np.maximum(wg.max(1), 0)
            s = np.maximum(hi - lo, 1e-8) / maxq
            if coarse_scales:
                s = coarse(s)
            z = np.clip(np.round(-lo / s.astype(np.float16).astype(np.float64)), 0, maxq).astype(np.int64)
        s16 = s.astype(np.float16)
        q = np.clip(np.round(wg / s16.astype(np.float64)[:, None]) + z[:, None], 0, maxq)
        codes[:, cols] = q
        scales[:, g] = s16
        zeros[:, g] = z
    return codes, scales, zeros


def pack_along(values, bits, axis):
    """Packs unsigned codes 32/bits to an int32 word along `axis`, the first in the low bits."""
    per = 32 // bits
    v = np.moveaxis(values.astype(np.uint64), axis, 0)
    n = v.shape[0] // per
    out = np.zeros((n,) + v.shape[1:], np.uint64)
    for k in range(per):
        out |= v[k::per] << np.uint64(k * bits)
    return np.ascontiguousarray(np.moveaxis(out.astype(np.uint32).view(np.int32), 0, axis))


def folder(name, quant_config, tensors, reference, note):
    """Writes the folder, then decodes what was written (read back from the file) with `reference`."""
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    c = dict(config)
    c["quantization_config"] = quant_config
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    for extra in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(SRC, extra), d)
    save_file(tensors, os.path.join(d, "model.safetensors"))
    expected = reference(load_file(os.path.join(d, "model.safetensors")))
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()}, os.path.join(OUT, name + ".expected.safetensors"))
    print(name, note)


def others(skip_suffix=".weight"):
    return {k: v for k, v in weights.items() if not any(k == m + ".weight" for m in LINEARS)}


# ---- GPTQ ------------------------------------------------------------------------------------
def gptq_reference(qweight, qzeros, scales, g_idx, bits, v1):
    """GPTQModel's documented unpacking, in numpy."""
    per = 32 // bits
    mask = (1 << bits) - 1
    qw = qweight.view(np.uint32).astype(np.int64)
    qz = qzeros.view(np.uint32).astype(np.int64)
    w_int = np.empty((qw.shape[0] * per, qw.shape[1]), np.int64)
    for i in range(per):
        w_int[i::per, :] = (qw >> (i * bits)) & mask  # unpack_rows
    zeros = np.empty((qz.shape[0], qz.shape[1] * per), np.int64)
    for i in range(per):
        zeros[:, i::per] = (qz >> (i * bits)) & mask  # unpack_cols
    if v1:
        zeros = (zeros + 1) & mask  # _correct_gptq_v1_qzeros
    s = scales.astype(np.float32)[g_idx]
    z = zeros.astype(np.float32)[g_idx]
    return ((w_int.astype(np.float32) - z) * s).T


def make_gptq(name, bits, group_size, sym, v1, desc_act, coarse_scales=False):
    tensors = others()
    for m in LINEARS:
        w = weights[m + ".weight"]
        out, inn = w.shape
        gs = inn if group_size == -1 else group_size
        groups = inn // gs
        if desc_act:
            perm = rng.permutation(inn)
            g_idx = np.empty(inn, np.int32)
            g_idx[perm] = np.arange(inn) // gs  # groups follow the activation order
        else:
            g_idx = (np.arange(inn) // gs).astype(np.int32)
        codes, scales, zeros = rtn(w, bits, g_idx, groups, sym, coarse_scales)
        stored_zeros = (zeros - 1) & ((1 << bits) - 1) if v1 else zeros
        qweight = pack_along(codes.T, bits, 0)  # [in/per, out]
        qzeros = pack_along(stored_zeros.T, bits, 1)  # [groups, out/per]
        tensors[m + ".qweight"] = qweight
        tensors[m + ".qzeros"] = qzeros
        tensors[m + ".scales"] = np.ascontiguousarray(scales.T)
        tensors[m + ".g_idx"] = g_idx
    qc = {
        "bits": bits, "group_size": group_size, "desc_act": desc_act, "sym": sym,
        "quant_method": "gptq", "checkpoint_format": "gptq" if v1 else "gptq_v2",
    }
    def reference(t):
        return {m + ".weight": gptq_reference(t[m + ".qweight"], t[m + ".qzeros"], t[m + ".scales"], t[m + ".g_idx"], bits, v1) for m in LINEARS}
    folder(name, qc, tensors, reference, f"GPTQ {'v1' if v1 else 'v2'} int{bits} g{group_size} sym={sym} desc_act={desc_act}")


def make_autogptq(name, source):
    """An AutoGPTQ-era copy of the GPTQ folder `source`: its settings moved out of config.json into
    quantize_config.json as AutoGPTQ 0.7 wrote it (no quant_method or checkpoint_format: v1 is
    implied), the tensors and the reference decode unchanged."""
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(os.path.join(OUT, source), d)
    c = json.load(open(os.path.join(d, "config.json")))
    qc = c.pop("quantization_config")
    assert qc["checkpoint_format"] == "gptq", "AutoGPTQ wrote v1 only"
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    side = {
        "bits": qc["bits"], "group_size": qc["group_size"], "damp_percent": 0.01, "desc_act": qc["desc_act"],
        "static_groups": False, "sym": qc["sym"], "true_sequential": True, "model_name_or_path": None,
        "model_file_base_name": "model",
    }
    with open(os.path.join(d, "quantize_config.json"), "w") as f:
        json.dump(side, f, indent=2)
    shutil.copy(os.path.join(OUT, source + ".expected.safetensors"), os.path.join(OUT, name + ".expected.safetensors"))
    print(name, f"AutoGPTQ quantize_config.json copy of {source}")


# ---- compressed-tensors ------------------------------------------------------------------------
def make_ct(name, bits, group_size, sym):
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    args = QuantizationArgs(num_bits=bits, type="int", symmetric=sym, strategy="group", group_size=group_size)
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    mid = 2 ** (bits - 1)
    tensors = others()
    for m in LINEARS:
        w = weights[m + ".weight"]
        out, inn = w.shape
        groups = inn // group_size
        codes, scales, zeros = rtn(w, bits, np.arange(inn) // group_size, groups, sym)
        q = torch.from_numpy((codes - mid).astype(np.int8))
        packed = pack_to_int32(q, bits)
        tensors[m + ".weight_packed"] = packed.numpy()
        tensors[m + ".weight_scale"] = scales
        tensors[m + ".weight_shape"] = np.array([out, inn], np.int64)
        if not sym:
            zp = pack_to_int32(torch.from_numpy((zeros - mid).astype(np.int8)), bits, packed_dim=0)
            tensors[m + ".weight_zero_point"] = zp.numpy()
    qc = {
        "quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
        "config_groups": {"group_0": {
            "targets": ["Linear"], "format": "pack-quantized", "input_activations": None, "output_activations": None,
            "weights": {"num_bits": bits, "type": "int", "symmetric": sym, "strategy": "group", "group_size": group_size,
                        "dynamic": False, "actorder": None, "observer": "minmax"}}},
        "ignore": ["lm_head"],
    }
    def reference(t):
        out = {}
        for m in LINEARS:
            state = {k: torch.from_numpy(t[m + "." + k]) for k in ("weight_packed", "weight_shape", "weight_zero_point") if m + "." + k in t}
            state["weight_scale"] = torch.from_numpy(t[m + ".weight_scale"].astype(np.float32))
            out[m + ".weight"] = PackedQuantizationCompressor.decompress(state, scheme)["weight"].numpy()
        return out
    folder(name, qc, tensors, reference, f"compressed-tensors int{bits} g{group_size} sym={sym}")


# ---- AWQ -------------------------------------------------------------------------------------------
def make_awq(name, group_size, coarse_scales=False):
    spec = importlib.util.spec_from_file_location("awq_packing", os.path.join(AWQ_SRC, "awq", "utils", "packing_utils.py"))
    awq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(awq)
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    tensors = others()
    for m in LINEARS:
        w = weights[m + ".weight"]
        out, inn = w.shape
        groups = inn // group_size
        codes, scales, zeros = rtn(w, 4, np.arange(inn) // group_size, groups, False, coarse_scales)
        ct = codes.T  # [in, out]
        zt = zeros.T  # [groups, out]
        qweight = np.zeros((inn, out // 8), np.uint32)
        qzeros = np.zeros((groups, out // 8), np.uint32)
        for col in range(out // 8):
            for k in range(8):
                qweight[:, col] |= (ct[:, col * 8 + order[k]].astype(np.uint32) << np.uint32(4 * k))
                qzeros[:, col] |= (zt[:, col * 8 + order[k]].astype(np.uint32) << np.uint32(4 * k))
        tensors[m + ".qweight"] = qweight.view(np.int32)
        tensors[m + ".qzeros"] = qzeros.view(np.int32)
        tensors[m + ".scales"] = np.ascontiguousarray(scales.T)
    qc = {"quant_method": "awq", "bits": 4, "group_size": group_size, "zero_point": True, "version": "gemm", "modules_to_not_convert": None}
    def reference(t):
        return {m + ".weight": awq.dequantize_gemm(
            torch.from_numpy(t[m + ".qweight"]), torch.from_numpy(t[m + ".qzeros"]),
            torch.from_numpy(t[m + ".scales"].astype(np.float32)), 4, group_size).numpy().T for m in LINEARS}
    folder(name, qc, tensors, reference, f"AWQ GEMM int4 g{group_size}")


if __name__ == "__main__":
    make_gptq("gptq-v1-sym4-g32", 4, 32, True, True, False)
    make_gptq("gptq-v2-asym4-g16-descact", 4, 16, False, False, True)
    make_gptq("gptq-v1-asym4-g32", 4, 32, False, True, False)
    make_gptq("gptq-v1-sym8-rows", 8, -1, True, True, False)
    make_ct("ct-sym4-g32", 4, 32, True)
    make_ct("ct-asym4-g32", 4, 32, False)
    make_ct("ct-sym8-g32", 8, 32, True)
    make_awq("awq-g32", 32)
    make_gptq("gptq-v2-asym4-g32-coarse", 4, 32, False, False, False, coarse_scales=True)
    make_awq("awq-g32-coarse", 32, coarse_scales=True)
    make_autogptq("gptq-autogptq-asym4-g32", "gptq-v1-asym4-g32")
    import compressed_tensors
    source = {
        "script": "golden/make_packed_checkpoints.py",
        "tool": "compressed-tensors, AutoAWQ packing_utils, GPTQModel's formulas (numpy)",
        "version": f"compressed-tensors {compressed_tensors.__version__}, autoawq 0.2.9, gptqmodel 7.7.0, torch {torch.__version__}",
        "numpy": np.__version__,
        "seed": SEED,
    }
    with open(os.path.join(OUT, "SOURCE.json"), "w") as f:
        json.dump(source, f, indent=1)
