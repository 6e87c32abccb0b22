#!/usr/bin/env python3
"""Makes golden/tiny/: tiny random-weight GPT-2, Llama (plain, Llama 3, linear and YaRN rope scaling), Qwen2, Qwen3, Gemma 3 and Phi-3 models saved by `transformers`
(config.json, model.safetensors in f32) with small byte-level BPE tokenizers built by `tokenizers`,
each tokenizer using the pre-tokenizer its family uses (gpt-2, llama-bpe, qwen2). Also writes
`logits.json` + `logits.f32` per model: token ids of a short text and the logits transformers computes,
the reference for Smelt's forward pass.

Needs torch, transformers and tokenizers (not needed by the tests, which only read the files):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers tokenizers
    /tmp/venv/bin/python golden/make_tiny_models.py
"""
import json, os, shutil, sys

import numpy as np
import torch
import transformers
import tokenizers
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors, Regex

SEED = 1234
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tiny')

TRAIN_TEXT = """Smelt converts, quantizes and evaluates open-weight language models.
The quick brown fox jumps over the lazy dog. It's 2026; we're testing 12345 and 3.14159!
Models move between ecosystems: safetensors folders, GGUF files, and our own Ingot container.
Don't they'll we've I'm you'd — naïve café résumé, Grüße, 東京, emoji 🙂 and tabs\tand\nnewlines.
""" * 4

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def make_tokenizer(kind, specials, vocab_size):
    tok = Tokenizer(models.BPE())
    if kind == 'gpt-2':
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        regex = LLAMA3_REGEX if kind == 'llama-bpe' else QWEN2_REGEX
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior='isolated', invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=kind != 'qwen2', use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TRAIN_TEXT], trainer=trainer)
    if kind == 'llama-bpe':
        # Llama 3 puts BOS in front through its post-processor (add_bos_token in GGUF terms).
        bos = specials[0]
        tok.post_processor = processors.TemplateProcessing(
            single=f'{bos} $A', pair=f'{bos} $A {bos}:1 $B:1', special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def save_model(name, config, tok, tok_config, text):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config)
    # Random but not too small weights, so numerical differences show in the logits.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    model = model.float().eval()
    model.save_pretrained(d, safe_serialization=True)
    tok.save(os.path.join(d, 'tokenizer.json'))
    with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)
    for extra in ('generation_config.json',):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    ids = tok.encode(text).ids  # with BOS where the post-processor adds it
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy().astype(np.float32)
    logits.astype('<f4').tofile(os.path.join(d, 'logits.f32'))
    with open(os.path.join(d, 'logits.json'), 'w') as f:
        json.dump({'text': text, 'ids': ids, 'shape': list(logits.shape), 'file': 'logits.f32 (little-endian f32, row-major)'}, f)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    print(name, 'params', sum(p.numel() for p in model.parameters()), 'tokens', len(ids))


def main():
    os.makedirs(OUT, exist_ok=True)
    text = "The quick brown fox's 12345 jumps — café 東京!\nIt's done."
    # `make_tiny_models.py qwen3 …` makes only the named models (the others' files stay as they are).
    only = set(sys.argv[1:])
    if only:
        for name in only:
            MODELS[name](text)
        return

    tok = make_tokenizer('gpt-2', ['<|endoftext|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.GPT2Config(vocab_size=v, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
    save_model('gpt2', cfg, tok, {'tokenizer_class': 'GPT2Tokenizer', 'bos_token': '<|endoftext|>',
                                  'eos_token': '<|endoftext|>', 'add_bos_token': False,
                                  'model_max_length': 64}, text)

    tok = make_tokenizer('llama-bpe', ['<|begin_of_text|>', '<|end_of_text|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.LlamaConfig(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=0, eos_token_id=1,
                                   tie_word_embeddings=False)
    save_model('llama', cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': '<|begin_of_text|>',
                                   'eos_token': '<|end_of_text|>', 'add_bos_token': True,
                                   'model_max_length': 64}, text)

    tok = make_tokenizer('qwen2', ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.Qwen2Config(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rms_norm_eps=1e-6, rope_theta=1000000.0, bos_token_id=0, eos_token_id=2,
                                   tie_word_embeddings=True)
    save_model('qwen2', cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'eos_token': '<|im_end|>',
                                   'pad_token': '<|endoftext|>', 'add_bos_token': False,
                                   'chat_template': "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
                                   'model_max_length': 64}, text)

    for make in MODELS.values():
        make(text)

    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_tiny_models.py', 'tool': 'transformers', 'version': transformers.__version__,
                   'torch': torch.__version__, 'tokenizers': tokenizers.__version__, 'seed': SEED}, f, indent=1)
        f.write('\n')


def make_qwen3(text):
    # head_dim 16 while hidden ÷ heads is 8: the head size must come from the config.
    tok = make_tokenizer('qwen2', ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.Qwen3Config(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                                   rms_norm_eps=1e-6, rope_theta=1000000.0, bos_token_id=0, eos_token_id=2,
                                   tie_word_embeddings=True)
    save_model('qwen3', cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'eos_token': '<|im_end|>',
                                   'pad_token': '<|endoftext|>', 'add_bos_token': False, 'model_max_length': 64}, text)


def make_llama_rope(name, rope, legacy_layout, text):
    # head_dim 16 where hidden ÷ heads is 8; rope scaling factors ≠ 1.
    tok = make_tokenizer('llama-bpe', ['<|begin_of_text|>', '<|end_of_text|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.LlamaConfig(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                                   rms_norm_eps=1e-5, rope_parameters=dict(rope, rope_theta=10000.0), bos_token_id=0,
                                   eos_token_id=1, tie_word_embeddings=False)
    save_model(name, cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': '<|begin_of_text|>',
                                'eos_token': '<|end_of_text|>', 'add_bos_token': True, 'model_max_length': 64}, text)
    if legacy_layout:
        # The layout before transformers 5: rope_theta at the top level, the rest in rope_scaling.
        path = os.path.join(OUT, name, 'config.json')
        c = json.load(open(path))
        params = c.pop('rope_parameters')
        c['rope_theta'] = params.pop('rope_theta')
        c['rope_scaling'] = params
        with open(path, 'w') as f:
            json.dump(c, f, indent=2, sort_keys=True)
            f.write('\n')
        back = transformers.AutoConfig.from_pretrained(os.path.join(OUT, name))
        assert back.rope_parameters['rope_type'] == rope['rope_type'] and back.rope_parameters['factor'] == rope['factor'], back


def make_gemma3(text):
    # 6 layers: 5 sliding (window 8, shorter than the text) and 1 global with linear scaling;
    # head_dim 16 where hidden ÷ heads is 8; final logits soft-capped.
    tok = make_tokenizer('qwen2', ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], 320)
    v = tok.get_vocab_size()
    cfg = transformers.Gemma3TextConfig(
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=6, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6, sliding_window=8,
        query_pre_attn_scalar=16, final_logit_softcapping=10.0,
        rope_parameters={'full_attention': {'rope_type': 'linear', 'factor': 2.0, 'rope_theta': 1000000.0},
                         'sliding_attention': {'rope_type': 'default', 'rope_theta': 10000.0}},
        bos_token_id=0, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)
    save_model('gemma3', cfg, tok, {'tokenizer_class': 'PreTrainedTokenizerFast', 'eos_token': '<|im_end|>',
                                    'pad_token': '<|endoftext|>', 'add_bos_token': False, 'model_max_length': 128}, text)


def make_phi3(text):
    # Phi-3: fused qkv_proj and gate_up_proj; LongRoPE with original context 16 < max 64, so the
    # reference sequence (longer than 16) uses the long factors and the attention factor ≠ 1.
    # Its tokenizer is SentencePiece (llama.cpp's Phi-3 converter needs tokenizer.model): the one
    # golden/make_tiny_spm.py trained, with transformers' tokenizer.json of it.
    spm_dir = os.path.join(OUT, 'llama-spm')
    tok = Tokenizer.from_file(os.path.join(spm_dir, 'tokenizer.json'))
    rng = np.random.default_rng(SEED)
    long_f = [round(float(x), 4) for x in 1.0 + 3.0 * rng.random(4)]
    short_f = [round(float(x), 4) for x in 1.0 + 0.5 * rng.random(4)]
    cfg = transformers.Phi3Config(
        vocab_size=1004, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, original_max_position_embeddings=16, rms_norm_eps=1e-5,
        rope_parameters={'rope_type': 'longrope', 'rope_theta': 10000.0, 'long_factor': long_f, 'short_factor': short_f,
                         'original_max_position_embeddings': 16},
        bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False)
    save_model('phi3', cfg, tok, {'tokenizer_class': 'LlamaTokenizer', 'bos_token': '<s>', 'eos_token': '</s>',
                                  'unk_token': '<unk>', 'add_bos_token': True, 'add_eos_token': False}, text)
    shutil.copy(os.path.join(spm_dir, 'tokenizer.model'), os.path.join(OUT, 'phi3', 'tokenizer.model'))


def make_phi3_partial(text):
    # Phi-3 as Phi-4-mini has it: rotary over part of each head (partial_rotary_factor 0.5: 4 of 8
    # dimensions), plain rope; and a sliding window of 8, shorter than the reference sequence.
    spm_dir = os.path.join(OUT, 'llama-spm')
    tok = Tokenizer.from_file(os.path.join(spm_dir, 'tokenizer.json'))
    cfg = transformers.Phi3Config(
        vocab_size=1004, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, original_max_position_embeddings=64, rms_norm_eps=1e-5,
        rope_parameters={'rope_type': 'default', 'rope_theta': 10000.0, 'partial_rotary_factor': 0.5},
        sliding_window=8, bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False)
    save_model('phi3-partial', cfg, tok, {'tokenizer_class': 'LlamaTokenizer', 'bos_token': '<s>', 'eos_token': '</s>',
                                          'unk_token': '<unk>', 'add_bos_token': True, 'add_eos_token': False}, text)
    shutil.copy(os.path.join(spm_dir, 'tokenizer.model'), os.path.join(OUT, 'phi3-partial', 'tokenizer.model'))


# Models added after the first three; `main` makes them after those (and alone when named).
MODELS = {
    'qwen3': make_qwen3,
    # Llama 3.1-style scaling (original context 64: with head_dim 16 the frequencies fall in all three bands).
    'llama3': lambda text: make_llama_rope('llama3', {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                                                      'high_freq_factor': 4.0, 'original_max_position_embeddings': 64},
                                           False, text),
    'llama-linear': lambda text: make_llama_rope('llama-linear', {'rope_type': 'linear', 'factor': 2.0}, True, text),
    'gemma3': make_gemma3,
    'phi3': make_phi3,
    'phi3-partial': make_phi3_partial,
    'llama-yarn': lambda text: make_llama_rope('llama-yarn', {'rope_type': 'yarn', 'factor': 4.0,
                                                              'original_max_position_embeddings': 32}, False, text),
}


if __name__ == '__main__':
    main()
