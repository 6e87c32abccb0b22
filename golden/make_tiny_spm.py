#!/usr/bin/env python3
"""Makes golden/tiny/llama-spm/: a tiny random-weight Llama (transformers) whose tokenizer is a
SentencePiece BPE model trained by the `sentencepiece` package on the first 100 kB of
corpus/groups_merged.txt (1000 pieces, byte fallback, a user-defined `<tool>` piece, digits split),
saved as a bare `tokenizer.model` with `tokenizer_config.json`, plus the `tokenizer.json` that
transformers converts it to (LlamaTokenizerFast). config.json states 1004 tokens, so the GGUF gets
four [PADn] tokens as llama.cpp's converter writes them.

Also writes golden/tiny/llama-spm/ids.json: the ids `sentencepiece` itself gives for a few texts
(with BOS), the reference for Smelt's SentencePiece tokenizer read from tokenizer.model, from
tokenizer.json and from GGUF.

    /work/venv/bin/python golden/make_tiny_spm.py     # torch, transformers, sentencepiece
"""
import io, json, os, shutil

import sentencepiece as spm
import torch
import transformers

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, 'tiny', 'llama-spm')
TEXTS = [
    'Hello  world <tool> 東京 🙂 naïve café',
    ' leading space and trailing space ',
    'The year 2026: 12345 apples, 3.14159 pies.\n\nNew paragraph\twith tab.',
]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    text = open(os.path.join(ROOT, '..', 'corpus', 'groups_merged.txt'), encoding='utf-8').read()[:100_000]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()), model_writer=model, vocab_size=1000, model_type='bpe',
        byte_fallback=True, character_coverage=0.995, user_defined_symbols=['<tool>'], split_digits=True,
        remove_extra_whitespaces=False, normalization_rule_name='identity', minloglevel=2)
    path = os.path.join(OUT, 'tokenizer.model')
    with open(path, 'wb') as f:
        f.write(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=path)

    torch.manual_seed(1234)
    cfg = transformers.LlamaConfig(vocab_size=1004, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    m = transformers.LlamaForCausalLM(cfg).float().eval()
    m.save_pretrained(OUT, safe_serialization=True)
    gen = os.path.join(OUT, 'generation_config.json')
    if os.path.exists(gen):
        os.remove(gen)
    tok_config = {'tokenizer_class': 'LlamaTokenizer', 'add_bos_token': True, 'add_eos_token': False,
                  'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>', 'legacy': True}
    with open(os.path.join(OUT, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)
    # transformers converts tokenizer.model (its SentencePiece converter) when no tokenizer.json is there.
    fast = transformers.AutoTokenizer.from_pretrained(OUT)
    fast.backend_tokenizer.save(os.path.join(OUT, 'tokenizer.json'))
    ids = [{'text': t, 'ids': [sp.bos_id()] + sp.encode(t)} for t in TEXTS]
    with open(os.path.join(OUT, 'ids.json'), 'w') as f:
        json.dump({'tool': f'sentencepiece {spm.__version__}', 'bos': True, 'cases': ids}, f, indent=1, ensure_ascii=False)
    make_gemma3(path, os.path.join(OUT, 'tokenizer.json'))
    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_tiny_spm.py', 'tool': 'sentencepiece + transformers',
                   'version': f'sentencepiece {spm.__version__}, transformers {transformers.__version__}', 'seed': 1234}, f, indent=1)
        f.write('\n')
    print('wrote', OUT, sorted(os.listdir(OUT)))


def make_gemma3(model_path, tokenizer_json):
    """golden/tiny/gemma3-spm/ (the same tokenizer.model, no tokenizer.json: llama.cpp's converter
    writes add_space_prefix = false for Gemma 3) and golden/tiny/gemma3-spm-json/ (tokenizer.json
    only, and vocab_size 1010 > its 1000 + 4 added tokens: the converter trims token_embd to 1004
    rows)."""
    for name, vocab, files in (('gemma3-spm', 1004, {'tokenizer.model': model_path}),
                               ('gemma3-spm-json', 1010, {'tokenizer.json': tokenizer_json})):
        out = os.path.join(ROOT, 'tiny', name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        torch.manual_seed(1234)
        cfg = transformers.Gemma3TextConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=6, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6, sliding_window=8,
            query_pre_attn_scalar=16, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)
        m = transformers.AutoModelForCausalLM.from_config(cfg).float().eval()
        m.save_pretrained(out, safe_serialization=True)
        gen = os.path.join(out, 'generation_config.json')
        if os.path.exists(gen):
            os.remove(gen)
        for dst, src in files.items():
            shutil.copy(src, os.path.join(out, dst))
        with open(os.path.join(out, 'tokenizer_config.json'), 'w') as f:
            json.dump({'tokenizer_class': 'GemmaTokenizer', 'add_bos_token': True, 'add_eos_token': False,
                       'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>'}, f, indent=2)
        with open(os.path.join(out, 'SOURCE.json'), 'w') as f:
            json.dump({'script': 'golden/make_tiny_spm.py', 'tool': 'sentencepiece + transformers',
                       'version': f'sentencepiece {spm.__version__}, transformers {transformers.__version__}', 'seed': 1234}, f, indent=1)
            f.write('\n')


if __name__ == '__main__':
    main()
