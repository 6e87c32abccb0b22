#!/usr/bin/env python3
"""Checks a SentencePiece tokenizer.json written by Smelt (GGUF -> Hugging Face) with the Python
`tokenizers` package: it loads, and encodes a text to the same ids as the reference ids given
(llama.cpp's llama-tokenize, or `smelt tokenize` on the GGUF, which is tested against it).

    check_sp_tokenizer.py TOKENIZER_JSON TEXT_FILE IDS [--parse-special]

IDS is a file of little-endian u32 ids (optionally zstd-compressed, .zst) or of ids separated by
spaces (smelt tokenize's output). Special-token text in TEXT_FILE stays text unless
--parse-special (llama-tokenize --no-parse-special, which llama-perplexity uses). Exit status 0
when the ids agree, 1 with the first difference when not.
"""
import struct, subprocess, sys
from tokenizers import Tokenizer


def read_ids(path):
    raw = open(path, 'rb').read()
    if path.endswith('.zst'):
        raw = subprocess.run(['zstd', '-dc', path], capture_output=True, check=True).stdout
    elif not path.endswith('.u32'):
        return [int(x) for x in raw.split()]
    return list(struct.unpack('<%dI' % (len(raw) // 4), raw))


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    tok.encode_special_tokens = '--parse-special' not in sys.argv
    text = open(sys.argv[2], encoding='utf-8').read()
    want = read_ids(sys.argv[3])
    got = tok.encode(text).ids
    if got != want:
        i = next((k for k, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
        ctx = tok.decode(want[max(0, i - 4):i + 4])
        sys.exit(f'ids differ at position {i}: ours {got[i:i + 8]} vs reference {want[i:i + 8]} '
                 f'({len(got)} vs {len(want)} ids) near {ctx!r}')
    print(f'ok: {len(got)} ids equal')


if __name__ == '__main__':
    main()
