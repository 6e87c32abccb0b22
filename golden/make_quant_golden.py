#!/usr/bin/env python3
"""Makes golden/quants/: bit-exact reference data for Sources/Quantization, from gguf-py.

For every ggml block type that gguf-py's `gguf.quants` handles, a few blocks are written as

    TYPE.blocks.bin   the raw blocks, as a GGUF file stores them
    TYPE.f32.bin      what gguf.quants.dequantize makes of them (little-endian f32)
    TYPE.input.bin    (Q8_0, Q4_0, Q4_1 only) the f32 values the blocks were quantized from, so the
                      Swift quantizers can be checked byte for byte against gguf-py's

Types gguf-py can quantize get half their blocks from quantizing random values (mixed scales: tiny,
large, zero, constant, all negative, hand-made rounding ties, one block whose scale overflows f16)
and half from random bytes; types it can only dequantize get random bytes. In random bytes the
f16 scale fields are replaced by finite f16 values (normal, subnormal, zero, either sign).

    python3 golden/make_quant_golden.py     # rewrites golden/quants/; then run golden/manifest.py
"""
import importlib.metadata
import json
import os

import numpy as np
import gguf.quants as gq
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

SEED = 1234
ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, 'quants')

# Types gguf-py quantizes: type -> byte offsets of the f16 scale fields in one block.
QUANTIZABLE = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [],
}
# Types gguf-py only dequantizes.
DEQUANT_ONLY = {
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0], T.NVFP4: [],
}
# Types whose f32 input is kept for the quantizer tests.
KEEP_INPUT = {T.Q8_0, T.Q4_0, T.Q4_1}


def blocks_for(block_size):
    """How many blocks to write: about 12 KiB of f32 per type at most."""
    return {32: 48, 64: 24, 256: 12}[block_size]


def f16_scales(rng, n):
    """n finite f16 bit patterns: mostly normal numbers, some subnormals, zeros, either sign."""
    kind = rng.integers(0, 10, size=n)
    exp = rng.integers(1, 31, size=n).astype(np.uint16)          # normal exponents 1..30
    mant = rng.integers(0, 1024, size=n).astype(np.uint16)
    bits = (exp << 10) | mant
    bits = np.where(kind == 0, mant, bits)                          # subnormal (or zero)
    bits = np.where(kind == 1, 0, bits)                             # zero
    # Keep most scales moderate (exponent 5..20, about 1e-3..32) so values look like weights.
    moderate = (rng.integers(5, 21, size=n).astype(np.uint16) << 10) | mant
    bits = np.where(kind >= 5, moderate, bits)
    sign = (rng.integers(0, 2, size=n).astype(np.uint16) << 15)
    return (bits | sign).astype(np.uint16)


def random_blocks(rng, qtype, n, scale_offsets):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    for off in scale_offsets:
        raw[:, off:off + 2] = f16_scales(rng, n).view(np.uint8).reshape(n, 2)
    return raw


def special_blocks_32():
    """Hand-made 32-value blocks: rounding ties and sign choices the reference quantizers decide."""
    out = []
    # Q8_0 ties: amax 127 makes d = 1, id = 1, so x * id lands on .5 exactly (roundf rounds away from 0).
    b = np.array([127, -127] + [k + 0.5 for k in range(-15, 15)], dtype=np.float32)
    out.append(b)
    # Q4_0: max -8 makes d = 1; x + 8.5 truncates (-0.5 -> 8, 0.5 -> 9, 6.6 -> 15).
    b = np.array([-8] + [k * 0.5 - 7.5 for k in range(31)], dtype=np.float32)
    out.append(b)
    # Q4_1: min 0, max 15 make d = 1; x + 0.5 truncates (0.5 -> 1, 14.5 -> 15).
    b = np.array([0, 15] + [k * 0.5 for k in range(30)], dtype=np.float32)
    out.append(b)
    # Equal magnitudes of both signs: the first one decides the sign of d.
    b = np.linspace(-1, 1, 32, dtype=np.float32)
    b[3], b[20] = -3, 3
    out.append(b)
    b = b.copy()
    b[3], b[20] = 3, -3
    out.append(b)
    # All zeros (d = 0), all equal positive, all equal negative.
    out.append(np.zeros(32, dtype=np.float32))
    out.append(np.full(32, 0.75, dtype=np.float32))
    out.append(np.full(32, -2.5, dtype=np.float32))
    # Scale overflows f16 for Q4_0/Q4_1 (d = 1e6 / 8 > 65504) but not Q8_0.
    b = np.linspace(-1e6, 1e6 * 0.9, 32, dtype=np.float32)
    out.append(b)
    # Tiny values: d is an f16 subnormal.
    out.append((np.arange(32, dtype=np.float32) - 16) * np.float32(1e-7))
    return out


def random_values(rng, n_blocks, block_size):
    """n_blocks blocks of float32 with a spread of scales, signs and shapes."""
    rows = []
    for i in range(n_blocks):
        kind = i % 6
        scale = np.float32(10.0 ** rng.uniform(-4, 2))
        v = rng.standard_normal(block_size).astype(np.float32) * scale
        if kind == 1:
            v = -np.abs(v)                              # all negative
        elif kind == 2:
            v = v * np.float32(1e4)                     # large
        elif kind == 3:
            v = np.abs(v) + scale                       # all positive, away from zero
        elif kind == 4:
            v[rng.integers(0, block_size, size=block_size // 4)] = 0  # some exact zeros
        rows.append(v.astype(np.float32))
    return np.stack(rows)


def write(name, suffix, array):
    with open(os.path.join(OUT, f'{name}.{suffix}.bin'), 'wb') as f:
        f.write(np.ascontiguousarray(array).tobytes())


def dequant(raw, qtype):
    out = gq.dequantize(raw, qtype)
    assert out.dtype == np.float32
    return out.astype('<f4').reshape(-1)


def make_quantized(rng, qtype, scale_offsets):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n = blocks_for(block_size)
    half = n // 2
    if block_size == 32:
        special = special_blocks_32()
        values = np.concatenate([np.stack(special), random_values(rng, half - len(special), 32)])
    else:
        values = random_values(rng, half, block_size)
        values[1] = 0                                  # one all-zero block
    values = values.astype(np.float32)
    with np.errstate(over='ignore'):
        quantized = gq.quantize(values, qtype).reshape(half, type_size)
    raw = np.concatenate([quantized, random_blocks(rng, qtype, n - half, scale_offsets)])
    name = qtype.name
    write(name, 'blocks', raw)
    with np.errstate(invalid='ignore', over='ignore'):
        write(name, 'f32', dequant(raw, qtype))
    if qtype in KEEP_INPUT:
        write(name, 'input', values.astype('<f4').reshape(-1))


def make_dequant_only(rng, qtype, scale_offsets):
    block_size, _ = GGML_QUANT_SIZES[qtype]
    raw = random_blocks(rng, qtype, blocks_for(block_size), scale_offsets)
    raw[0, :] = 0                                       # an all-zero block
    write(qtype.name, 'blocks', raw)
    with np.errstate(invalid='ignore', over='ignore'):
        write(qtype.name, 'f32', dequant(raw, qtype))


def make_plain(rng):
    # F32: any non-NaN bit pattern, plus the specials.
    bits = rng.integers(0, 2**32, size=1024, dtype=np.uint64).astype(np.uint32)
    bits = np.where((bits & 0x7fffffff) > 0x7f800000, bits & 0xff00ffff, bits)
    bits[:4] = [0x00000000, 0x80000000, 0x7f800000, 0x00000001]
    write('F32', 'blocks', bits.astype('<u4'))
    write('F32', 'f32', bits.view(np.float32).astype('<f4'))
    # F16 and BF16: every non-NaN pattern class (normal, subnormal, zero, inf), either sign.
    for name, qtype, exp_mask in (('F16', T.F16, 0x7c00), ('BF16', T.BF16, 0x7f80)):
        bits = rng.integers(0, 2**16, size=1024, dtype=np.uint32).astype(np.uint16)
        nan = ((bits & exp_mask) == exp_mask) & ((bits & ~np.uint16(exp_mask | 0x8000)) != 0)
        bits = np.where(nan, bits & np.uint16(0x83ff), bits)
        bits[:6] = [0x0000, 0x8000, exp_mask, 0x8000 | exp_mask, 0x0001, 0x8001]
        raw = bits.astype('<u2').view(np.uint8)
        write(name, 'blocks', raw)
        write(name, 'f32', gq.dequantize(raw, qtype).astype('<f4').reshape(-1))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.bin'):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(SEED)
    make_plain(rng)
    for qtype, offsets in QUANTIZABLE.items():
        make_quantized(rng, qtype, offsets)
    for qtype, offsets in DEQUANT_ONLY.items():
        make_dequant_only(rng, qtype, offsets)
    source = {
        'script': 'golden/make_quant_golden.py',
        'tool': 'gguf-py',
        'version': importlib.metadata.version('gguf'),
        'numpy': np.__version__,
        'seed': SEED,
    }
    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump(source, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'golden/quants: {len(os.listdir(OUT))} files, {total} bytes')


if __name__ == '__main__':
    main()
