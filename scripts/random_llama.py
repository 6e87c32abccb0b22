#!/usr/bin/env python3
"""Writes a random-weight Llama as an F32 GGUF whose rows all divide into 256-value super-blocks
(hidden 1024, feed-forward 2816, GQA 4, 4 layers, vocabulary 8192 with a placeholder GPT-2 style
tokenizer): the quantize speed and exactness checks' model (never committed).

    /work/venv/bin/python scripts/random_llama.py OUT.gguf [--layers 4] [--seed 0]
"""
import argparse

import numpy as np
from gguf import GGUFWriter

p = argparse.ArgumentParser()
p.add_argument('out')
p.add_argument('--layers', type=int, default=4)
p.add_argument('--hidden', type=int, default=1024)
p.add_argument('--ffn', type=int, default=2816)
p.add_argument('--vocab', type=int, default=8192)
p.add_argument('--seed', type=int, default=0)
a = p.parse_args()
heads, kv = 16, 4
hd = a.hidden // heads
rng = np.random.default_rng(a.seed)
w = GGUFWriter(a.out, 'llama')
w.add_name('random-llama')
w.add_context_length(2048)
w.add_embedding_length(a.hidden)
w.add_block_count(a.layers)
w.add_feed_forward_length(a.ffn)
w.add_head_count(heads)
w.add_head_count_kv(kv)
w.add_rope_dimension_count(hd)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(a.vocab)
w.add_file_type(0)
w.add_tokenizer_model('gpt2')
w.add_tokenizer_pre('default')
w.add_token_list([f'<t{i}>' for i in range(a.vocab)])
w.add_token_types([1] * a.vocab)
w.add_token_merges([])
w.add_bos_token_id(0)
w.add_eos_token_id(1)


def mat(rows, cols):
    return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)


w.add_tensor('token_embd.weight', mat(a.vocab, a.hidden))
for l in range(a.layers):
    b = f'blk.{l}.'
    w.add_tensor(b + 'attn_norm.weight', np.ones(a.hidden, dtype=np.float32))
    w.add_tensor(b + 'attn_q.weight', mat(a.hidden, a.hidden))
    w.add_tensor(b + 'attn_k.weight', mat(kv * hd, a.hidden))
    w.add_tensor(b + 'attn_v.weight', mat(kv * hd, a.hidden))
    w.add_tensor(b + 'attn_output.weight', mat(a.hidden, a.hidden))
    w.add_tensor(b + 'ffn_norm.weight', np.ones(a.hidden, dtype=np.float32))
    w.add_tensor(b + 'ffn_gate.weight', mat(a.ffn, a.hidden))
    w.add_tensor(b + 'ffn_up.weight', mat(a.ffn, a.hidden))
    w.add_tensor(b + 'ffn_down.weight', mat(a.hidden, a.ffn))
w.add_tensor('output_norm.weight', np.ones(a.hidden, dtype=np.float32))
w.add_tensor('output.weight', mat(a.vocab, a.hidden))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
