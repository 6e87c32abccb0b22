#!/usr/bin/env python3
"""Makes golden/gptoss/: one tiny random gpt-oss model saved in the two checkpoint forms OpenAI's
release and transformers use, holding exactly the same weights:

  golden/gptoss/bf16/   experts as bf16 tensors: `mlp.experts.gate_up_proj` [E, hidden, 2·ffn] with gate
                        and up interleaved by column (gate = [..., 0::2], up = [..., 1::2]) and
                        `mlp.experts.down_proj` [E, ffn, hidden] (both [in, out], transposed relative to
                        the blocks form); every other tensor bf16 too.
  golden/gptoss/mxfp4/  experts as MXFP4 pairs: `*_blocks` u8 [E, rows, cols/32, 16] (two FP4 codes a
                        byte, element 2j in the low nibble of byte j, element 2j+1 in the high one) and
                        `*_scales` u8 [E, rows, cols/32] (E8M0: 2^(s-127)); rows = out features, gate and
                        up interleaved row by row in `gate_up_proj_blocks` (row 2i = gate i, 2i+1 = up i).
                        config.json carries `quantization_config: {quant_method: mxfp4, …}`.

The expert weights are drawn as random FP4 codes and E8M0 scales, so the bf16 form is their exact
dequantization (FP4 values times a power of two are exact in bf16) and both folders are the same
model. The script checks that: transformers loads the MXFP4 folder with
`Mxfp4Config(dequantize=True)` in float32 and must give bit-identical logits to the bf16 folder
loaded in float32.

Shape: 3 layers (sliding, full, sliding; window 8, shorter than the 30-token test text), 4 experts,
top-2, hidden 64, ffn 32 (≠ hidden, so a transposition mistake shows), 4 heads × head_dim 32
(≠ hidden ÷ heads = 16), 2 KV heads, YaRN (factor 4, original context 32, truncate false), attention
sinks, biases everywhere. gate/up weights are large enough that the clamped SwiGLU (limit 7) is hit;
the script prints and asserts the share of clamped gate and up values on the test text.
The tokenizer is a small byte-level BPE trained by `tokenizers` with the o200k (`gpt-4o`) split
pattern gpt-oss uses.

Each folder also gets `logits.json` + `logits.f32` (token ids of the test text and transformers'
float32 logits, little-endian f32 row-major), the same layout golden/tiny/ uses.

Needs torch, transformers (≥ 5 with GptOss) and tokenizers; the tests only read the files:

    /work/venv/bin/python golden/make_gptoss_tiny.py
"""
import json, os, shutil, sys

import numpy as np
import torch
import transformers
import tokenizers
from safetensors.torch import save_file, load_file
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, Regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_models import TRAIN_TEXT  # noqa: E402

SEED = 20260601
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gptoss')

# The o200k split pattern (gpt-4o / gpt-oss tokenizer.json).
O200K_REGEX = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ['<|startoftext|>', '<|endoftext|>', '<|return|>']
TEXT = "The quick brown fox's 12345 jumps — café 東京!\nIt's done."

# FP4 (E2M1) code → value; E8M0 scale byte s → 2^(s-127).
FP4_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32)


def make_tokenizer(vocab_size=384):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_REGEX), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TRAIN_TEXT], trainer=trainer)
    return tok


def random_mxfp4(rng, experts, rows, cols, scale_lo, scale_hi):
    """Random MXFP4 pair in the checkpoint layout: blocks u8 [E, rows, cols/32, 16], scales u8 [E, rows, cols/32]."""
    blocks = rng.integers(0, 256, size=(experts, rows, cols // 32, 16), dtype=np.uint8)
    scales = rng.integers(scale_lo, scale_hi + 1, size=(experts, rows, cols // 32), dtype=np.uint8)
    return blocks, scales


def dequantize(blocks, scales):
    """[E, rows, G, 16] + [E, rows, G] → float32 [E, rows, G·32] (element 2j = low nibble of byte j)."""
    lo = FP4_VALUES[blocks & 0x0F]
    hi = FP4_VALUES[blocks >> 4]
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * np.exp2(scales.astype(np.float32) - 127.0)[..., None]
    return vals.reshape(blocks.shape[0], blocks.shape[1], -1)


def write_logits(d, ids, logits):
    logits.astype('<f4').tofile(os.path.join(d, 'logits.f32'))
    with open(os.path.join(d, 'logits.json'), 'w') as f:
        json.dump({'text': TEXT, 'ids': ids, 'shape': list(logits.shape),
                   'file': 'logits.f32 (little-endian f32, row-major)', 'dtype': 'float32 forward'}, f)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    tok = make_tokenizer()
    v = tok.get_vocab_size()
    ids = tok.encode(TEXT).ids
    assert 16 <= len(ids) <= 32, len(ids)

    E, H, F, L = 4, 64, 32, 3
    cfg = transformers.GptOssConfig(
        vocab_size=v, hidden_size=H, intermediate_size=F, num_hidden_layers=L, num_local_experts=E,
        num_experts_per_tok=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32, sliding_window=8,
        max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_parameters={'rope_type': 'yarn', 'factor': 4.0, 'beta_fast': 32.0, 'beta_slow': 1.0,
                         'truncate': False, 'original_max_position_embeddings': 32, 'rope_theta': 150000.0},
        bos_token_id=0, eos_token_id=2, pad_token_id=1, tie_word_embeddings=False)
    assert cfg.layer_types == ['sliding_attention', 'full_attention', 'sliding_attention'], cfg.layer_types

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    experts_q = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('norm.weight'):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith('sinks'):
                p.normal_(0.0, 1.0)
            else:
                p.normal_(0.0, 0.2)
        for i, layer in enumerate(model.model.layers):
            ex = layer.mlp.experts
            # gate_up: out rows 2·F (gate/up interleaved), in cols H; scales 2^-3..2^-1 (σ ≈ 0.5: the clamp is hit).
            gu_b, gu_s = random_mxfp4(rng, E, 2 * F, H, 124, 126)
            # down: out rows H, in cols F.
            dn_b, dn_s = random_mxfp4(rng, E, H, F, 122, 124)
            experts_q[i] = (gu_b, gu_s, dn_b, dn_s)
            ex.gate_up_proj.copy_(torch.from_numpy(dequantize(gu_b, gu_s)).transpose(1, 2))
            ex.down_proj.copy_(torch.from_numpy(dequantize(dn_b, dn_s)).transpose(1, 2))
            ex.gate_up_proj_bias.normal_(0.0, 1.0)
        # Every weight exactly representable in bf16, so the bf16 files hold the model the logits come from.
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    model.eval()

    # Share of clamped gate/up values among the routed (token, expert) pairs.
    stats = {'gate_clamped': 0, 'up_clamped': 0, 'values': 0}

    def hook(module, args):
        h, idx = args[0], args[1]
        for t in range(h.shape[0]):
            for e in idx[t].tolist():
                gu = h[t] @ module.gate_up_proj[e] + module.gate_up_proj_bias[e]
                stats['gate_clamped'] += int((gu[0::2] > cfg.swiglu_limit).sum())
                stats['up_clamped'] += int((gu[1::2].abs() > cfg.swiglu_limit).sum())
                stats['values'] += F

    handles = [layer.mlp.experts.register_forward_pre_hook(hook) for layer in model.model.layers]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy().astype(np.float32)
    for h in handles:
        h.remove()
    print('clamp:', stats)
    assert stats['gate_clamped'] > 0 and stats['up_clamped'] > 0, stats

    # --- bf16 form (transformers' own save).
    bf16_dir = os.path.join(OUT, 'bf16')
    model.to(torch.bfloat16).save_pretrained(bf16_dir, safe_serialization=True)
    model.to(torch.float32)

    # --- MXFP4 form: the same tensors with the expert matrices replaced by blocks + scales.
    mx_dir = os.path.join(OUT, 'mxfp4')
    os.makedirs(mx_dir)
    state = load_file(os.path.join(bf16_dir, 'model.safetensors'))
    for i in range(L):
        pre = f'model.layers.{i}.mlp.experts.'
        del state[pre + 'gate_up_proj'], state[pre + 'down_proj']
        gu_b, gu_s, dn_b, dn_s = experts_q[i]
        state[pre + 'gate_up_proj_blocks'] = torch.from_numpy(gu_b)
        state[pre + 'gate_up_proj_scales'] = torch.from_numpy(gu_s)
        state[pre + 'down_proj_blocks'] = torch.from_numpy(dn_b)
        state[pre + 'down_proj_scales'] = torch.from_numpy(dn_s)
    save_file(state, os.path.join(mx_dir, 'model.safetensors'), metadata={'format': 'pt'})
    c = json.load(open(os.path.join(bf16_dir, 'config.json')))
    c['quantization_config'] = {
        'quant_method': 'mxfp4',
        'modules_to_not_convert': ['model.layers.*.self_attn', 'model.layers.*.mlp.router',
                                   'model.embed_tokens', 'lm_head'],
    }
    with open(os.path.join(mx_dir, 'config.json'), 'w') as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write('\n')

    tok_config = {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': SPECIALS[0], 'eos_token': SPECIALS[2],
                  'pad_token': SPECIALS[1], 'add_bos_token': False, 'model_max_length': 128}
    for d in (bf16_dir, mx_dir):
        tok.save(os.path.join(d, 'tokenizer.json'))
        with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
            json.dump(tok_config, f, indent=2)
        p = os.path.join(d, 'generation_config.json')
        if os.path.exists(p):
            os.remove(p)

    # --- Both forms load to the same float32 model.
    with torch.no_grad():
        a = transformers.AutoModelForCausalLM.from_pretrained(bf16_dir, dtype=torch.float32).eval()
        la = a(torch.tensor([ids])).logits[0].numpy()
        b = transformers.AutoModelForCausalLM.from_pretrained(
            mx_dir, dtype=torch.float32, quantization_config=transformers.Mxfp4Config(dequantize=True)).eval()
        lb = b(torch.tensor([ids])).logits[0].numpy()
    for name, pa in a.state_dict().items():
        pb = b.state_dict()[name]
        assert torch.equal(pa, pb), name
    assert np.array_equal(la, logits), np.abs(la - logits).max()
    assert np.array_equal(lb, logits), np.abs(lb - logits).max()
    print('bf16 and mxfp4 folders load to identical float32 weights and logits')

    for d in (bf16_dir, mx_dir):
        write_logits(d, ids, logits)
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o644)
    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_gptoss_tiny.py', 'tool': 'transformers', 'version': transformers.__version__,
                   'torch': torch.__version__, 'tokenizers': tokenizers.__version__, 'seed': SEED,
                   'clamp': stats}, f, indent=1)
        f.write('\n')
    print('params', sum(p.numel() for p in model.parameters()), 'tokens', len(ids), 'vocab', v)


if __name__ == '__main__':
    main()
