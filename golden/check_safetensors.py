#!/usr/bin/env python3
"""Reads safetensors files that Smelt wrote with the Python `safetensors` package and compares them
with an expectation. Used by the Swift tests; exits non-zero with a message on any difference.

    check_safetensors.py equal FILE EXPECTED.json   # every tensor's dtype, shape, bytes, metadata
    check_safetensors.py index INDEX.json EXPECTED.json   # a sharded set through its index
    check_safetensors.py bf16round ORIGINAL ROUNDTRIP  # f32 -> bf16 -> f32 changed values by bf16 RNE only
"""
import json, os, sys
import numpy as np
import safetensors


def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    # safetensors.deserialize is framework-free: [(name, {'dtype','shape','data'})]
    tensors = {name: v for name, v in safetensors.deserialize(data)}
    header_len = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + header_len])
    if (8 + header_len) % 8 != 0:
        sys.exit(f'{path}: data section starts at {8 + header_len}, not 8-byte aligned')
    return tensors, header.get('__metadata__', {})


def compare(got, got_meta, exp, where):
    want = exp['tensors']
    if set(got) != set(want):
        sys.exit(f'{where}: tensor names differ: missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}')
    for name, w in want.items():
        g = got[name]
        if g['dtype'] != w['dtype'] or list(g['shape']) != w['shape']:
            sys.exit(f'{where}: {name}: got {g["dtype"]} {g["shape"]}, want {w["dtype"]} {w["shape"]}')
        if bytes(g['data']).hex() != w['hex']:
            sys.exit(f'{where}: {name}: bytes differ')
    if exp.get('metadata') is not None and got_meta != exp['metadata']:
        sys.exit(f'{where}: metadata {got_meta} != {exp["metadata"]}')


def main():
    mode = sys.argv[1]
    if mode == 'equal':
        tensors, meta = load(sys.argv[2])
        compare(tensors, meta, json.load(open(sys.argv[3])), sys.argv[2])
    elif mode == 'index':
        index = json.load(open(sys.argv[2]))
        d = os.path.dirname(sys.argv[2])
        allt, meta, total = {}, None, 0
        for shard in sorted(set(index['weight_map'].values())):
            t, m = load(os.path.join(d, shard))
            for n in t:
                if index['weight_map'].get(n) != shard:
                    sys.exit(f'{shard}: tensor {n} not mapped to this shard by the index')
                total += len(bytes(t[n]['data']))
            allt.update(t)
            meta = m
        if index['metadata']['total_size'] != total:
            sys.exit(f'index total_size {index["metadata"]["total_size"]} != {total}')
        compare(allt, meta, json.load(open(sys.argv[3])), sys.argv[2])
    elif mode == 'bf16round':
        orig, _ = load(sys.argv[2])
        back, _ = load(sys.argv[3])
        checked = 0
        for name, o in orig.items():
            b = back[name]
            if o['dtype'] != 'F32':
                if bytes(o['data']) != bytes(b['data']):
                    sys.exit(f'{name}: non-float tensor changed')
                continue
            x = np.frombuffer(bytes(o['data']), dtype='<f4')
            y = np.frombuffer(bytes(b['data']), dtype='<f4')
            bits = x.view(np.uint32).astype(np.uint64)
            want = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
            if not np.array_equal(y.view(np.uint32), want.view(np.uint32)):
                i = int(np.argmax(y.view(np.uint32) != want.view(np.uint32)))
                sys.exit(f'{name}[{i}]: {x[i]!r} came back as {y[i]!r}, bf16 RNE gives {want[i]!r}')
            err = np.abs(x.astype(np.float64) - y.astype(np.float64))
            bound = np.abs(x.astype(np.float64)) * 2.0 ** -8
            if np.any(err > bound):
                sys.exit(f'{name}: error above bf16 rounding bound')
            checked += x.size
        print(f'ok: {checked} f32 values within bf16 rounding')
    else:
        sys.exit(f'unknown mode {mode}')


if __name__ == '__main__':
    main()
