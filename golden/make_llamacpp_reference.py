#!/usr/bin/env python3
"""Makes golden/llamacpp/<model>.json: what llama.cpp's convert_hf_to_gguf.py writes for a tiny
model folder of golden/tiny/ (--outtype f32): every tensor's GGUF type, shape and sha256 of its
bytes, and every metadata key outside `tokenizer.*` and `general.*` with its GGUF type and value.
Smelt's HF → GGUF conversion of the same folder is tested against it (ArchitecturesTests).

The tiny models carry small tokenizers that llama.cpp's converter cannot identify (it recognises
pre-tokenizers by hashing what a known text encodes to), so this script tells it the family's
pre-tokenizer name instead; the tokenizer keys are compared separately by the tokenizer tests.

Needs a llama.cpp checkout (its converter and gguf-py) and torch + transformers:

    /work/venv/bin/python golden/make_llamacpp_reference.py /work/llama/src qwen2=qwen2 qwen3=qwen2

A model outside golden/tiny/ is named by its path under golden/ (`gptoss/mxfp4=gpt-4o` reads
golden/gptoss/mxfp4 and writes golden/llamacpp/gptoss-mxfp4.json); `:TYPE` after the pre-tokenizer
converts with `--outtype TYPE` instead of f32 (`gptoss/bf16=gpt-4o:bf16` writes gptoss-bf16.bf16.json).
"""
import json, os, sys, tempfile

import check_llamacpp_reference

ROOT = os.path.dirname(os.path.abspath(__file__))


def main():
    llama = sys.argv[1]
    sys.path[:0] = [llama, os.path.join(llama, 'gguf-py')]
    import convert_hf_to_gguf as conv
    import gguf
    from conversion import base

    out_dir = os.path.join(ROOT, 'llamacpp')
    os.makedirs(out_dir, exist_ok=True)
    for spec in sys.argv[2:]:
        model, pre = spec.split('=')
        pre, _, outtype = pre.partition(':')
        label = model.replace('/', '-') + ('.' + outtype if outtype else '')
        base.TextModel.get_vocab_base_pre = lambda self, tokenizer, pre=pre: pre
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, label + '.gguf')
            folder = os.path.join(ROOT, 'tiny', model) if '/' not in model else os.path.join(ROOT, model)
            sys.argv = ['convert_hf_to_gguf.py', folder, '--outtype', outtype or 'f32', '--outfile', path]
            conv.main()
            description = check_llamacpp_reference.describe(path)
        with open(os.path.join(out_dir, label + '.json'), 'w') as f:
            json.dump(description, f, indent=1, sort_keys=True)
            f.write('\n')
    import subprocess
    commit = subprocess.run(['git', '-C', llama, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(out_dir, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_llamacpp_reference.py', 'tool': 'llama.cpp convert_hf_to_gguf.py',
                   'version': commit or 'unknown'}, f, indent=1)
        f.write('\n')

if __name__ == '__main__':
    main()
