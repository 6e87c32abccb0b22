#!/usr/bin/env python3
"""Makes golden/gptoss/yarn-rounded/: transformers' float32 logits for the tiny gpt-oss of
golden/gptoss/ (made by make_gptoss_tiny.py, which also writes the logits of the model as
configured) with YaRN's correction range rounded to whole dimensions (`truncate: true`), which is
how llama.cpp always computes it. `smelt perplexity/drift --yarn-range rounded` (and
`LanguageModel.yarnAlwaysRound`) must reproduce these; the default must reproduce the folder's own.

Both checkpoint forms are run (bf16 in float32, MXFP4 with `Mxfp4Config(dequantize=True)` in
float32) and must agree bit for bit.

Needs torch and transformers; the tests only read the files:

    /work/venv/bin/python golden/make_gptoss_logits.py
"""
import json, os

import numpy as np
import torch
import transformers

ROOT = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(ROOT, 'gptoss')
OUT = os.path.join(SRC, 'yarn-rounded')


def logits(folder, ids, **kw):
    cfg = transformers.AutoConfig.from_pretrained(folder)
    assert cfg.rope_parameters.get('truncate') is False, cfg.rope_parameters
    cfg.rope_parameters['truncate'] = True
    m = transformers.AutoModelForCausalLM.from_pretrained(folder, config=cfg, dtype=torch.float32, **kw).eval()
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0].numpy().astype(np.float32)


def main():
    meta = json.load(open(os.path.join(SRC, 'bf16', 'logits.json')))
    ids = meta['ids']
    a = logits(os.path.join(SRC, 'bf16'), ids)
    b = logits(os.path.join(SRC, 'mxfp4'), ids, quantization_config=transformers.Mxfp4Config(dequantize=True))
    assert np.array_equal(a, b), np.abs(a - b).max()
    configured = np.fromfile(os.path.join(SRC, 'bf16', 'logits.f32'), dtype='<f4').reshape(a.shape)
    moved = float(np.abs(a - configured).max() / np.abs(configured).max())
    print('rounded range vs configured (truncate false): max |Δ| / max |logit| =', moved)
    os.makedirs(OUT, exist_ok=True)
    a.astype('<f4').tofile(os.path.join(OUT, 'logits.f32'))
    with open(os.path.join(OUT, 'logits.json'), 'w') as f:
        json.dump({'text': meta['text'], 'ids': ids, 'shape': list(a.shape),
                   'file': 'logits.f32 (little-endian f32, row-major)',
                   'dtype': 'float32 forward, rope_parameters.truncate = true'}, f)
    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_gptoss_logits.py', 'tool': 'transformers', 'version': transformers.__version__,
                   'torch': torch.__version__, 'model': 'golden/gptoss/{bf16,mxfp4} with truncate = true',
                   'relative_change_from_configured': moved}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
