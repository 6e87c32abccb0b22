#!/usr/bin/env python3
"""Makes golden/llamacpp/gptoss-TYPE.json (TYPE: MXFP4_MOE, Q8_0, Q4_0, Q4_K_M): what llama-quantize writes for TYPE from the
F32 GGUF that llama.cpp's converter makes of golden/gptoss/bf16 (`--outtype f32`): every tensor's
GGUF type, shape and sha256, and every key outside tokenizer.* and general.* (the layout
golden/check_llamacpp_reference.py compares). Smelt's `quantize --type MXFP4_MOE` of its own F32
GGUF of the same folder (tested equal to the converter's) must give the same tensors (with
--exact-ggml for the types other than MXFP4_MOE).

    /work/venv/bin/python golden/make_gptoss_quant_reference.py /work/llama/src
"""
import json, os, subprocess, sys, tempfile

import check_llamacpp_reference

ROOT = os.path.dirname(os.path.abspath(__file__))


def main():
    llama = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, 'f32.gguf')
        code = ("import sys; sys.path[:0] = [%r, %r]; import convert_hf_to_gguf as conv; from conversion import base; "
                "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'gpt-4o'; "
                "sys.argv = ['convert_hf_to_gguf.py', %r, '--outtype', 'f32', '--outfile', %r]; conv.main()"
                % (llama, os.path.join(llama, 'gguf-py'), os.path.join(ROOT, 'gptoss', 'bf16'), f32))
        subprocess.run([sys.executable, '-c', code], check=True, capture_output=True)
        for ftype in ('MXFP4_MOE', 'Q8_0', 'Q4_0', 'Q4_K_M'):
            out = os.path.join(tmp, ftype + '.gguf')
            subprocess.run([os.path.join(llama, 'build', 'bin', 'llama-quantize'), f32, out, ftype, '1'],
                           check=True, capture_output=True)
            description = check_llamacpp_reference.describe(out)
            with open(os.path.join(ROOT, 'llamacpp', f'gptoss-{ftype}.json'), 'w') as f:
                json.dump(description, f, indent=1, sort_keys=True)
                f.write('\n')


if __name__ == '__main__':
    main()
