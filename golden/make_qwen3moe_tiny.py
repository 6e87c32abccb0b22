#!/usr/bin/env python3
"""Makes golden/tiny/qwen3moe/: a tiny random Qwen3-MoE (transformers' Qwen3MoeForCausalLM, f32) with
a qwen2-kind byte-level BPE tokenizer, and transformers' logits for the test text, the same way and
the same layout as golden/make_tiny_models.py makes the dense models (whose helpers it uses).

Shape: 2 layers, 4 experts, top-2 with norm_topk_prob (as the released Qwen3-MoE models, and as
llama.cpp always computes it), expert ffn 24 (≠ hidden 32, ≠ the dense intermediate_size 64, which
the model does not use), head_dim 16 where hidden ÷ heads is 8, per-head Q/K norms. The checkpoint
holds one tensor per expert (`mlp.experts.{e}.gate_proj.weight`, …), which transformers saves
from its stacked parameters.

    /work/venv/bin/python golden/make_qwen3moe_tiny.py
"""
import os, sys

import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_models import make_tokenizer, save_model  # noqa: E402

TEXT = "The quick brown fox's 12345 jumps — café 東京!\nIt's done."


def main():
    tok = make_tokenizer('qwen2', ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.Qwen3MoeConfig(
        vocab_size=v, hidden_size=32, intermediate_size=64, moe_intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[], max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=1000000.0, bos_token_id=0, eos_token_id=2, tie_word_embeddings=False)
    save_model('qwen3moe', cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'eos_token': '<|im_end|>',
                                      'pad_token': '<|endoftext|>', 'add_bos_token': False, 'model_max_length': 64}, TEXT)


if __name__ == '__main__':
    main()
