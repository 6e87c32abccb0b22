#!/usr/bin/env python3
"""The `tokenizer.*` keys llama.cpp's convert_hf_to_gguf.py writes for a tiny model folder, and a
check of a GGUF file against them (type and value of every key, both ways). `make` also writes
the ids llama.cpp's llama-tokenize gives with that GGUF for the texts of the folder's ids.json
(llama-spm's when it has none)
(special tokens parsed, BOS added) to golden/llamacpp/tokenizer/MODEL.tokenize.json.

    llamacpp_tokenizer_keys.py make /work/llama/src llama-spm     # writes golden/llamacpp/tokenizer/llama-spm.keys.json
    llamacpp_tokenizer_keys.py check FILE.gguf golden/llamacpp/tokenizer/llama-spm.keys.json

`make` needs torch, transformers, sentencepiece and a llama.cpp checkout; `check` only gguf-py.
Exit status 0 when the keys agree, 1 with the differences on stdout when not.
"""
import json, os, struct, sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def keys(path):
    import gguf
    r = gguf.GGUFReader(path)
    out = {}
    for f in r.fields.values():
        if not f.name.startswith('tokenizer.'):
            continue
        v = f.contents()
        if f.types[0] == gguf.GGUFValueType.ARRAY and f.types[-1] == gguf.GGUFValueType.FLOAT32:
            v = [struct.unpack('<I', struct.pack('<f', x))[0] for x in v]  # exact bits
        out[f.name] = {'type': '/'.join(t.name for t in f.types), 'value': v}
    return out


def make(llama, model):
    import tempfile
    sys.path[:0] = [llama, os.path.join(llama, 'gguf-py')]
    import convert_hf_to_gguf as conv
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, model + '.gguf')
        sys.argv = ['convert_hf_to_gguf.py', os.path.join(ROOT, 'tiny', model), '--outtype', 'f32', '--outfile', path]
        conv.main()
        description = keys(path)
        import subprocess
        ids = os.path.join(ROOT, 'tiny', model, 'ids.json')
        if not os.path.exists(ids):
            ids = os.path.join(ROOT, 'tiny', 'llama-spm', 'ids.json')  # the texts the tokenizer was trained for
        cases = json.load(open(ids, encoding='utf-8'))['cases']
        tool = os.path.join(llama, 'build', 'bin', 'llama-tokenize')
        out = []
        for c in cases:
            text = os.path.join(tmp, 'text.txt')
            with open(text, 'w', encoding='utf-8') as f:
                f.write(c['text'])
            r = subprocess.run([tool, '-m', path, '-f', text, '--ids', '--log-disable', '--no-escape'],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f'note: llama-tokenize cannot load {model}: {r.stderr.strip()[-200:]} (no .tokenize.json)')
                out = None
                break
            out.append({'text': c['text'], 'ids': json.loads(r.stdout.strip().splitlines()[-1])})
        if out is not None:
            with open(os.path.join(ROOT, 'llamacpp', 'tokenizer', model + '.tokenize.json'), 'w') as f:
                json.dump({'tool': 'llama-tokenize --ids --no-escape (special tokens parsed, BOS added)', 'cases': out}, f, indent=1, ensure_ascii=False)
                f.write('\n')
    with open(os.path.join(ROOT, 'llamacpp', 'tokenizer', model + '.keys.json'), 'w') as f:
        json.dump(description, f, indent=0, sort_keys=True, ensure_ascii=False)
        f.write('\n')


def check(path, ref):
    ours = json.loads(json.dumps(keys(path)))
    want = json.load(open(ref, encoding='utf-8'))
    diffs = []
    for name in sorted(set(ours) | set(want)):
        a, b = ours.get(name), want.get(name)
        if a != b:
            if a and b and isinstance(a['value'], list) and isinstance(b['value'], list) and len(a['value']) == len(b['value']):
                i = next(k for k, (x, y) in enumerate(zip(a['value'], b['value'])) if x != y) if a['type'] == b['type'] else 0
                diffs.append(f'{name}: {a["type"]} vs {b["type"]}; first difference at {i}: ours {a["value"][i]!r}, llama.cpp {b["value"][i]!r}')
            else:
                diffs.append(f'{name}: ours {str(a)[:200]}, llama.cpp {str(b)[:200]}')
    for d in diffs:
        print(d)
    if diffs:
        sys.exit(1)
    print(f'ok: {len(want)} tokenizer keys as llama.cpp writes them')


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3])
