#!/usr/bin/env python3
"""Writes a gpt-oss-20b-shaped checkpoint with random weights in the MXFP4 form (about 13.8 GB):
24 layers, 32 experts (top-4), hidden 2880, expert ffn 2880, 64 query heads and 8 KV heads of 64,
vocabulary 201088; experts as `*_blocks` u8 + `*_scales` u8 (E8M0), everything else bf16, one
`model.safetensors` written in pieces so the generator stays small in memory. The tokenizer is the
tiny one of golden/gptoss (GGUF conversion pads the vocabulary to 201088, as llama.cpp's converter
does). For the scale bench only (scripts/bench_gptoss.sh): never committed.

    gen_gptoss.py OUT_DIR [LAYERS]
"""
import json, os, shutil, sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, F, E, HEADS, KV, HD, VOCAB = 2880, 2880, 32, 64, 8, 64, 201088
CHUNK = 1 << 26


def tensors(layers):
    """(name, dtype, shape, kind) in file order; kind: 'bf16', 'blocks', 'scales'."""
    out = [('lm_head.weight', 'BF16', [VOCAB, H], 'bf16'), ('model.embed_tokens.weight', 'BF16', [VOCAB, H], 'bf16')]
    for i in range(layers):
        p = f'model.layers.{i}.'
        out += [
            (p + 'input_layernorm.weight', 'BF16', [H], 'norm'),
            (p + 'mlp.experts.down_proj_bias', 'BF16', [E, H], 'bf16'),
            (p + 'mlp.experts.down_proj_blocks', 'U8', [E, H, F // 32, 16], 'blocks'),
            (p + 'mlp.experts.down_proj_scales', 'U8', [E, H, F // 32], 'scales'),
            (p + 'mlp.experts.gate_up_proj_bias', 'BF16', [E, 2 * F], 'bf16'),
            (p + 'mlp.experts.gate_up_proj_blocks', 'U8', [E, 2 * F, H // 32, 16], 'blocks'),
            (p + 'mlp.experts.gate_up_proj_scales', 'U8', [E, 2 * F, H // 32], 'scales'),
            (p + 'mlp.router.bias', 'BF16', [E], 'bf16'),
            (p + 'mlp.router.weight', 'BF16', [E, H], 'bf16'),
            (p + 'post_attention_layernorm.weight', 'BF16', [H], 'norm'),
            (p + 'self_attn.k_proj.bias', 'BF16', [KV * HD], 'bf16'),
            (p + 'self_attn.k_proj.weight', 'BF16', [KV * HD, H], 'bf16'),
            (p + 'self_attn.o_proj.bias', 'BF16', [H], 'bf16'),
            (p + 'self_attn.o_proj.weight', 'BF16', [H, HEADS * HD], 'bf16'),
            (p + 'self_attn.q_proj.bias', 'BF16', [HEADS * HD], 'bf16'),
            (p + 'self_attn.q_proj.weight', 'BF16', [HEADS * HD, H], 'bf16'),
            (p + 'self_attn.sinks', 'BF16', [HEADS], 'bf16'),
            (p + 'self_attn.v_proj.bias', 'BF16', [KV * HD], 'bf16'),
            (p + 'self_attn.v_proj.weight', 'BF16', [KV * HD, H], 'bf16'),
        ]
    out.append(('model.norm.weight', 'BF16', [H], 'norm'))
    return out


def piece(rng, kind, n):
    """n bytes of one tensor kind."""
    if kind == 'blocks':
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if kind == 'scales':
        return rng.integers(118, 123, n, dtype=np.uint8).tobytes()
    # bf16: the high halves of f32 normal values (σ 0.02; norms around 1).
    v = rng.standard_normal(n // 2, dtype=np.float32) * np.float32(0.02)
    if kind == 'norm':
        v += np.float32(1)
    return (v.view(np.uint32) >> 16).astype(np.uint16).tobytes()


def main():
    out = sys.argv[1]
    layers = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    os.makedirs(out, exist_ok=True)
    items = tensors(layers)
    header, offset = {'__metadata__': {'format': 'pt', 'generated_by': 'scripts/gen_gptoss.py'}}, 0
    for name, dtype, shape, _ in items:
        n = int(np.prod(shape)) * (2 if dtype == 'BF16' else 1)
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    rng = np.random.default_rng(20)
    with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
        f.write(len(text).to_bytes(8, 'little') + text)
        for name, dtype, shape, kind in items:
            s, e = header[name]['data_offsets']
            left = e - s
            while left > 0:
                n = min(CHUNK, left)
                f.write(piece(rng, kind, n))
                left -= n
    config = {
        'architectures': ['GptOssForCausalLM'], 'model_type': 'gpt_oss', 'hidden_size': H, 'intermediate_size': F,
        'num_hidden_layers': layers, 'num_local_experts': E, 'num_experts_per_tok': 4, 'num_attention_heads': HEADS,
        'num_key_value_heads': KV, 'head_dim': HD, 'sliding_window': 128, 'vocab_size': VOCAB,
        'max_position_embeddings': 131072, 'rms_norm_eps': 1e-05, 'attention_bias': True, 'hidden_act': 'silu',
        'swiglu_limit': 7.0, 'tie_word_embeddings': False, 'bos_token_id': 0, 'eos_token_id': 2, 'pad_token_id': 1,
        'layer_types': ['sliding_attention' if i % 2 == 0 else 'full_attention' for i in range(layers)],
        'rope_parameters': {'rope_type': 'yarn', 'factor': 32.0, 'beta_fast': 32.0, 'beta_slow': 1.0, 'truncate': False,
                            'original_max_position_embeddings': 4096, 'rope_theta': 150000.0},
        'quantization_config': {'quant_method': 'mxfp4', 'modules_to_not_convert': [
            'model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head']},
    }
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(ROOT, 'golden', 'gptoss', 'mxfp4', name), os.path.join(out, name))
    print(f'{out}: {offset / 1e9:.2f} GB of tensors, {len(items)} tensors')


if __name__ == '__main__':
    main()
