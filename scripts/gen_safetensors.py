#!/usr/bin/env python3
"""Writes a synthetic safetensors model of about SIZE bytes (f32 tensors of random normal values,
a Llama-like naming), streaming it in pieces so the generator itself stays small in memory.

    gen_safetensors.py OUT.safetensors [SIZE_MB] [DTYPE]
    gen_safetensors.py --hf-folder DIR [SIZE_MB]   # a Llama-named model folder with config.json
"""
import json, struct, sys
import numpy as np


def main():
    if sys.argv[1] == '--hf-folder':
        return hf_folder(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2048)
    out = sys.argv[1]
    size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    dtype = sys.argv[3] if len(sys.argv) > 3 else 'F32'
    elem = {'F32': 4, 'F16': 2, 'BF16': 2}[dtype]
    rows, cols = 4096, 4096  # 64 MiB per f32 tensor
    per = rows * cols * elem
    count = max(1, size_mb * (1 << 20) // per)
    header, offset = {'__metadata__': {'format': 'pt', 'generated_by': 'scripts/gen_safetensors.py'}}, 0
    for i in range(count):
        proj = ('gate_proj', 'up_proj', 'down_proj')[i % 3]
        header[f'model.layers.{i // 3}.mlp.{proj}.weight'] = {'dtype': dtype, 'shape': [rows, cols], 'data_offsets': [offset, offset + per]}
        offset += per
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    rng = np.random.default_rng(0)
    with open(out, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for i in range(count):
            for _ in range(4):
                block = rng.standard_normal((rows // 4, cols), dtype=np.float32) * 0.02
                if dtype == 'F16':
                    block = block.astype('<f2')
                elif dtype == 'BF16':
                    block = (block.view(np.uint32) >> 16).astype('<u2')
                f.write(block.tobytes())
    print(f'{out}: {count} tensors, {offset / 1e9:.2f} GB')


def hf_folder(d, size_mb):
    """A Llama-style folder: MLP weights of 4096 x 4096 in f32 and a config that names them."""
    import os
    os.makedirs(d, exist_ok=True)
    count = max(1, size_mb * (1 << 20) // (4096 * 4096 * 4))
    layers = (count + 2) // 3
    sys.argv = [sys.argv[0], os.path.join(d, 'model.safetensors'), str(size_mb), 'F32']
    main()
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump({'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_size': 4096,
                   'intermediate_size': 4096, 'num_hidden_layers': layers, 'num_attention_heads': 32,
                   'num_key_value_heads': 8, 'max_position_embeddings': 4096, 'rms_norm_eps': 1e-5,
                   'rope_theta': 10000.0, 'vocab_size': 32000}, f, indent=2)


if __name__ == '__main__':
    main()
