#!/usr/bin/env python3
"""GGUF files as gguf-py's GGUFReader reads them, for Smelt's interop tests.

    python3 golden/check_gguf.py dump FILE [--hex-limit N]      # JSON description on stdout
    python3 golden/check_gguf.py expect FILE EXPECTED.json      # FILE reads as EXPECTED describes
    python3 golden/check_gguf.py same ORIGINAL COPY             # same metadata and tensor bytes
    python3 golden/check_gguf.py split ORIGINAL SPLIT1 SPLIT2 …  # a split set holds ORIGINAL
    python3 golden/check_gguf.py safetensors FILE.gguf FILE.safetensors  # same tensors, same bytes

The description ("dump") is: version, alignment, data_offset, metadata in file order (each value
typed: {"type": T, "value": V} for scalars, {"type": "array", "element_type": T, "values": [...]}
for arrays, whose scalar elements are bare values and whose array elements are typed values),
and tensors in file order: name, ggml type id and name, shape outermost-first, ne, absolute data
offset, byte count, sha256 and (up to --hex-limit bytes) hex. Floats are given by their bit
patterns in hex (so NaN, -0.0 and inf compare exactly); strings as UTF-8 text. Exit status 0
when the check holds, 1 with the differences on stdout when not.
"""
import hashlib
import json
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType

SCALAR_FORMATS = {
    GGUFValueType.UINT8: 'B', GGUFValueType.INT8: 'b', GGUFValueType.UINT16: 'H', GGUFValueType.INT16: 'h',
    GGUFValueType.UINT32: 'I', GGUFValueType.INT32: 'i', GGUFValueType.UINT64: 'Q', GGUFValueType.INT64: 'q',
    GGUFValueType.FLOAT32: 'f', GGUFValueType.FLOAT64: 'd', GGUFValueType.BOOL: '?',
}


def type_name(t):
    return GGUFValueType(int(t)).name.lower()


def bare(part, vtype):
    """A scalar element of `vtype` from a gguf-py part (a one-element numpy array)."""
    vtype = GGUFValueType(int(vtype))
    if vtype in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return part.tobytes()[::-1].hex()  # little-endian bytes → big-endian hex of the bit pattern
    if vtype == GGUFValueType.BOOL:
        return bool(part[0])
    return int(part[0])


def walk(parts, i, vtype):
    """Decodes the value of `vtype` whose parts start at parts[i]; returns (typed value, next i).
    gguf-py flattens nested arrays into `parts`; this rebuilds them from the element types and
    counts stored there."""
    vtype = GGUFValueType(int(vtype))
    if vtype == GGUFValueType.STRING:
        return {'type': 'string', 'value': bytes(parts[i + 1]).decode('utf-8')}, i + 2
    if vtype == GGUFValueType.ARRAY:
        etype = GGUFValueType(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        values = []
        for _ in range(count):
            if etype == GGUFValueType.ARRAY:
                v, i = walk(parts, i, etype)
            elif etype == GGUFValueType.STRING:
                v, i = bytes(parts[i + 1]).decode('utf-8'), i + 2
            else:
                v, i = bare(parts[i], etype), i + 1
            values.append(v)
        return {'type': 'array', 'element_type': type_name(etype), 'values': values}, i
    return {'type': type_name(vtype), 'value': bare(parts[i], vtype)}, i + 1


def dump(path, hex_limit=1 << 16):
    r = GGUFReader(path)
    metadata = []
    for key, field in r.fields.items():
        if key.startswith('GGUF.'):
            continue
        # parts: key length, key bytes, value type, then the value's own parts.
        vtype = int(field.parts[2][0])
        value, end = walk(field.parts, 3, vtype)
        assert end == len(field.parts), f'{key}: decoded {end} of {len(field.parts)} parts'
        metadata.append({'key': key, 'value': value})
    tensors = []
    for t in r.tensors:
        raw = np.asarray(r.data[t.data_offset:t.data_offset + t.n_bytes]).tobytes()
        entry = {
            'name': t.name, 'ggml_type': int(t.tensor_type), 'type': t.tensor_type.name,
            'shape': [int(d) for d in reversed(t.shape.tolist())], 'ne': [int(d) for d in t.shape.tolist()],
            'data_offset': int(t.data_offset), 'nbytes': int(t.n_bytes),
            'sha256': hashlib.sha256(raw).hexdigest(),
        }
        if t.n_bytes <= hex_limit:
            entry['hex'] = raw.hex()
        tensors.append(entry)
    version = int(r.fields['GGUF.version'].parts[0][0])
    return {'version': version, 'alignment': int(r.alignment), 'data_offset': int(r.data_offset),
            'metadata': metadata, 'tensors': tensors}


def diff(a, b, where, out, limit=20):
    """Appends to `out` the places where a and b differ (exact; strings by code points)."""
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f'{where}: {a!r} != {b!r}')
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f'{where}.{k}: only in {"second" if k in b else "first"}')
            else:
                diff(a[k], b[k], f'{where}.{k}', out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f'{where}: {len(a)} items != {len(b)} items')
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f'{where}[{i}]', out, limit)
    elif a != b:
        out.append(f'{where}: {a!r} != {b!r}')


def content(d, drop_split=False):
    """What must survive a copy: metadata, tensor names/types/shapes/bytes (not offsets)."""
    md = [m for m in d['metadata'] if not (drop_split and m['key'].startswith('split.'))]
    ts = [{k: t[k] for k in ('name', 'ggml_type', 'type', 'shape', 'nbytes', 'sha256')} for t in d['tensors']]
    return {'metadata': md, 'tensors': ts}


def report(problems):
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


def main(argv):
    if len(argv) >= 2 and argv[0] == 'dump':
        hex_limit = int(argv[argv.index('--hex-limit') + 1]) if '--hex-limit' in argv else 1 << 16
        json.dump(dump(argv[1], hex_limit), sys.stdout, ensure_ascii=False)
        sys.stdout.write('\n')
    elif len(argv) == 3 and argv[0] == 'expect':
        with open(argv[2], encoding='utf-8') as f:
            expected = json.load(f)
        problems = []
        diff(expected, dump(argv[1]), 'file', problems)
        report(problems)
    elif len(argv) == 3 and argv[0] == 'same':
        problems = []
        diff(content(dump(argv[1], 0)), content(dump(argv[2], 0)), 'file', problems)
        report(problems)
    elif len(argv) >= 3 and argv[0] == 'split':
        original = dump(argv[1], 0)
        parts = [dump(p, 0) for p in argv[2:]]
        n = len(parts)
        total = sum(len(p['tensors']) for p in parts)
        problems = []
        for i, p in enumerate(parts):
            keys = {m['key']: m['value'] for m in p['metadata']}
            want = {'split.no': {'type': 'uint16', 'value': i}, 'split.count': {'type': 'uint16', 'value': n},
                    'split.tensors.count': {'type': 'int32', 'value': total}}
            for k, v in want.items():
                if keys.get(k) != v:
                    problems.append(f'split {i + 1}: {k} is {keys.get(k)!r}, expected {v!r}')
            if i > 0:
                extra = [k for k in keys if not k.startswith('split.') and k != 'general.alignment']
                if extra:
                    problems.append(f'split {i + 1}: carries model metadata {extra}')
            if not p['tensors']:
                problems.append(f'split {i + 1}: holds no tensors')
        merged = {'metadata': parts[0]['metadata'], 'tensors': [t for p in parts for t in p['tensors']]}
        diff(content(original), content(merged, drop_split=True), 'set', problems)
        report(problems)
    elif len(argv) == 3 and argv[0] == 'safetensors':
        from safetensors.numpy import load_file
        st = load_file(argv[2])
        r = GGUFReader(argv[1])
        problems = []
        names = [t.name for t in r.tensors]
        if sorted(names) != sorted(st):
            problems.append(f'tensor names differ: {sorted(set(names) ^ set(st))}')
        for t in r.tensors:
            if t.name not in st:
                continue
            a = st[t.name]
            shape = [int(d) for d in reversed(t.shape.tolist())]
            if shape != list(a.shape) and not (a.shape == () and shape == [1]):
                problems.append(f'{t.name}: shape {shape} != {list(a.shape)}')
            raw = np.asarray(r.data[t.data_offset:t.data_offset + t.n_bytes]).tobytes()
            if raw != a.tobytes():
                problems.append(f'{t.name}: bytes differ')
        report(problems)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == '__main__':
    main(sys.argv[1:])
