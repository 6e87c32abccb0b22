#!/usr/bin/env python3
"""Checks `smelt quantize --exact-ggml` against llama-quantize: for each file type, quantizes the same
F32 GGUF with both (optionally with the same importance matrix) and compares every tensor's type and
bytes with gguf-py. Metadata is not compared (smelt adds smelt.* keys; key order differs).

    scripts/exact_ggml.py F32.gguf [--smelt .build/release/smelt] [--llama-quantize PATH]
                          [--imatrix FILE] [--types Q4_K_M,Q6_K,...] [--work DIR] [--threads N]

Exit status 1 when any tensor differs.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
from gguf import GGUFReader

TYPES = ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'IQ4_XS', 'IQ4_NL',
         'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0']


def compare(a_path, b_path):
    a, b = GGUFReader(a_path), GGUFReader(b_path)
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    bad = []
    for name in sorted(set(ta) | set(tb)):
        x, y = ta.get(name), tb.get(name)
        if x is None or y is None:
            bad.append(f'{name}: only in {"llama-quantize" if x is None else "smelt"}')
        elif x.tensor_type != y.tensor_type:
            bad.append(f'{name}: smelt {x.tensor_type.name}, llama-quantize {y.tensor_type.name}')
        elif np.asarray(x.data).tobytes() != np.asarray(y.data).tobytes():
            bad.append(f'{name}: {x.tensor_type.name} bytes differ')
    types = {}
    for t in ta.values():
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return len(ta), bad, types


def main():
    p = argparse.ArgumentParser()
    p.add_argument('f32')
    p.add_argument('--smelt', default='.build/release/smelt')
    p.add_argument('--llama-quantize', default=os.environ.get('LLAMA_QUANTIZE', '/work/llama/src/build/bin/llama-quantize'))
    p.add_argument('--imatrix')
    p.add_argument('--types', default=','.join(TYPES))
    p.add_argument('--work', default='/tmp/smelt-exact-ggml')
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    failed = 0
    for t in args.types.split(','):
        tag = t + ('-imatrix' if args.imatrix else '')
        ours, theirs = os.path.join(args.work, f'smelt-{tag}.gguf'), os.path.join(args.work, f'llama-{tag}.gguf')
        cmd = [args.smelt, 'quantize', args.f32, ours, '--type', t, '--exact-ggml', '--force', '--threads', str(args.threads)]
        lq = [args.llama_quantize] + (['--imatrix', args.imatrix] if args.imatrix else []) + [args.f32, theirs, t, str(args.threads)]
        if args.imatrix:
            cmd += ['--imatrix', args.imatrix]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        t1 = time.time()
        subprocess.run(lq, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t2 = time.time()
        n, bad, types = compare(ours, theirs)
        mix = ', '.join(f'{v} {k}' for k, v in sorted(types.items(), key=lambda kv: -kv[1]))
        status = 'identical' if not bad else f'{len(bad)} DIFFER'
        print(f'{tag:16} {n} tensors {status:12} smelt {t1 - t0:6.1f} s  llama-quantize {t2 - t1:6.1f} s   [{mix}]')
        for line in bad[:5]:
            print('    ' + line)
        failed += bool(bad)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
