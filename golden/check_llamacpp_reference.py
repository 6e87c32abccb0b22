#!/usr/bin/env python3
"""Compares a GGUF file with a description made by golden/make_llamacpp_reference.py (what
llama.cpp's converter writes for the same Hugging Face folder): the same tensors (GGUF type, shape,
sha256 of the bytes) and the same keys outside `tokenizer.*` and `general.*` (type and value).

    python3 golden/check_llamacpp_reference.py FILE.gguf golden/llamacpp/MODEL.json

`smelt.*` keys (Smelt's own provenance, e.g. smelt.quantize.method) are not compared. Exit status 0 when they agree, 1 with the differences on stdout when not.
"""
import hashlib, json, sys


def describe(path):
    import gguf
    r = gguf.GGUFReader(path)
    keys = {}
    for f in r.fields.values():
        if f.name.startswith(('tokenizer.', 'general.', 'GGUF.', 'smelt.')):
            continue
        keys[f.name] = {'type': f.types[0].name, 'value': f.contents()}
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = {'type': t.tensor_type.name, 'shape': [int(x) for x in reversed(t.shape)],
                           'sha256': hashlib.sha256(bytes(t.data.tobytes())).hexdigest()}
    return {'keys': keys, 'tensors': tensors}


def main():
    ours = json.loads(json.dumps(describe(sys.argv[1])))
    want = json.load(open(sys.argv[2]))
    diffs = []
    for part in ('keys', 'tensors'):
        for name in sorted(set(ours[part]) | set(want[part])):
            a, b = ours[part].get(name), want[part].get(name)
            if a != b:
                diffs.append(f'{part[:-1]} {name}: ours {a}, llama.cpp {b}')
    for d in diffs:
        print(d)
    if diffs:
        sys.exit(1)
    print(f"ok: {len(want['tensors'])} tensors and {len(want['keys'])} keys as llama.cpp writes them")


if __name__ == '__main__':
    main()
