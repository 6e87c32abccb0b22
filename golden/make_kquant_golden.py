#!/usr/bin/env python3
"""Makes golden/quants/ggml/: what llama.cpp's own C code writes for rows of weight-shaped data, with
and without an importance matrix, for every type Smelt encodes.

The quantizer is ggml_quantize_chunk from libggml-base.so (the entry point llama-quantize calls),
loaded with ctypes from a llama.cpp build:

    python3 golden/make_kquant_golden.py [PATH/TO/libggml-base.so]
    python3 golden/manifest.py

(default: /work/llama/src/build/bin/libggml-base.so). The files:

    rows.f32.bin          ROWS x COLS little-endian f32 values (the same input for every type)
    importance.f32.bin    COLS f32 importance values (mean squared activations, as llama-imatrix
                          records them: positive, a few large, a few zero)
    TYPE.bin              the ROWS quantized rows without an importance matrix
    TYPE.imatrix.bin      the same rows quantized with the importance matrix

SOURCE.json records the llama.cpp commit and how the library was built (compiler flags matter:
FMA contraction or fast-math would change the bytes).
"""
import ctypes
import hashlib
import json
import os
import sys

import numpy as np

SEED = 20261201
ROWS, COLS = 8, 512
ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, 'quants', 'ggml')
DEFAULT_LIB = '/work/llama/src/build/bin/libggml-base.so'

# ggml_type ids and block sizes / bytes (ggml-common.h).
TYPES = {
    'Q4_0': (2, 32, 18), 'Q4_1': (3, 32, 20), 'Q5_0': (6, 32, 22), 'Q5_1': (7, 32, 24), 'Q8_0': (8, 32, 34),
    'Q2_K': (10, 256, 84), 'Q3_K': (11, 256, 110), 'Q4_K': (12, 256, 144), 'Q5_K': (13, 256, 176),
    'Q6_K': (14, 256, 210), 'IQ4_NL': (20, 32, 18), 'IQ4_XS': (23, 256, 136), 'MXFP4': (39, 32, 17),
}


def make_rows(rng):
    """ROWS rows shaped like transformer weights, each exercising different paths of the searches."""
    rows = []
    # 0: a typical linear weight, N(0, 0.02), with a few outliers.
    r = rng.standard_normal(COLS) * 0.02
    r[rng.integers(0, COLS, 6)] *= 12
    rows.append(r)
    # 1: heavy tails (Student t, 3 degrees of freedom), larger scale.
    rows.append(rng.standard_t(3, COLS) * 0.3)
    # 2: all positive (a norm-like or embedding-like row), offset from zero.
    rows.append(np.abs(rng.standard_normal(COLS)) * 0.05 + 0.01)
    # 3: all negative, with one zero sub-block of 32 and one zero sub-block of 16.
    r = -np.abs(rng.standard_normal(COLS)) * 1.5
    r[64:96] = 0
    r[300:316] = 0
    rows.append(r)
    # 4: a whole zero super-block, then tiny values (scales near f16 subnormals).
    r = rng.standard_normal(COLS) * 1e-6
    r[:256] = 0
    rows.append(r)
    # 5: large values, uniform.
    rows.append(rng.uniform(-1000, 1000, COLS))
    # 6: sub-blocks of constants and repeated levels (ties in the searches).
    r = np.repeat(rng.integers(-4, 5, COLS // 16).astype(np.float64) * 0.125, 16)
    r[::7] += 0.0625
    rows.append(r)
    # 7: a row with one dominant value per sub-block and exact zeros elsewhere.
    r = np.zeros(COLS)
    r[::32] = rng.standard_normal(COLS // 32) * 4
    r[5::16] = rng.standard_normal(COLS // 16) * 0.5
    rows.append(r)
    return np.stack(rows).astype(np.float32)


def make_importance(rng):
    imp = (rng.standard_normal(COLS) ** 2 + 0.05) * 0.3
    imp[rng.integers(0, COLS, 8)] *= 200      # a few massive activation channels
    imp[rng.integers(0, COLS, 8)] = 0         # channels that never fired
    imp[128:144] = 0                          # one whole sub-block of 16 unused
    return imp.astype(np.float32)


def build_flags(lib_path):
    """The C compiler and flags of the ggml-base build, from CMake's files when they are there."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(lib_path)))
    info = {}
    flags = os.path.join(build, 'ggml', 'src', 'CMakeFiles', 'ggml-base.dir', 'flags.make')
    if os.path.exists(flags):
        for line in open(flags):
            if line.startswith('C_FLAGS'):
                info['c_flags'] = line.split('=', 1)[1].strip()
    cache = os.path.join(build, 'CMakeCache.txt')
    if os.path.exists(cache):
        for line in open(cache):
            for key in ('CMAKE_C_COMPILER:', 'CMAKE_BUILD_TYPE:', 'GGML_NATIVE:'):
                if line.startswith(key):
                    info[key.split(':')[0]] = line.split('=', 1)[1].strip()
    compiler = info.get('CMAKE_C_COMPILER')
    if compiler and os.path.exists(compiler):
        import subprocess
        info['compiler_version'] = subprocess.run([compiler, '--version'], capture_output=True, text=True).stdout.splitlines()[0]
    info['note'] = ('GGML_NATIVE applies to ggml-cpu only; ggml-base (ggml-quants.c) is compiled with the flags above, '
                    'for baseline x86-64 (SSE2, no FMA), so no float contraction')
    return info


def main():
    lib_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_LIB
    lib = ctypes.CDLL(lib_path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.bin'):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(SEED)
    rows = np.ascontiguousarray(make_rows(rng), dtype='<f4')
    imp = np.ascontiguousarray(make_importance(rng), dtype='<f4')
    rows.tofile(os.path.join(OUT, 'rows.f32.bin'))
    imp.tofile(os.path.join(OUT, 'importance.f32.bin'))
    for name, (tid, block, nbytes) in TYPES.items():
        size = ROWS * COLS // block * nbytes
        for suffix, matrix in (('', None), ('.imatrix', imp)):
            out = np.zeros(size, dtype=np.uint8)
            n = lib.ggml_quantize_chunk(
                tid, rows.ctypes.data, out.ctypes.data, 0, ROWS, COLS,
                None if matrix is None else matrix.ctypes.data)
            assert n == size, (name, n, size)
            out.tofile(os.path.join(OUT, f'{name}{suffix}.bin'))
    with open(lib_path, 'rb') as f:
        lib_sha = hashlib.sha256(f.read()).hexdigest()
    source = {
        'script': 'golden/make_kquant_golden.py',
        'tool': 'llama.cpp ggml_quantize_chunk (libggml-base.so via ctypes)',
        'version': '3f545bec (ngxson/llama.cpp, build 10587)',
        'build': build_flags(lib_path),
        'library_sha256': lib_sha,
        'numpy': np.__version__,
        'seed': SEED,
        'rows': ROWS,
        'cols': COLS,
    }
    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump(source, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'golden/quants/ggml: {len(os.listdir(OUT))} files, {total} bytes')


if __name__ == '__main__':
    main()
