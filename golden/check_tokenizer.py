#!/usr/bin/env python3
"""Checks that two tokenizer.json files encode a text to the same ids with the Python `tokenizers`
package (the second one written by Smelt). Used by the Swift tests.

    check_tokenizer.py ORIGINAL.json OURS.json TEXT_FILE [MAX_BYTES]
"""
import sys
from tokenizers import Tokenizer


def main():
    a = Tokenizer.from_file(sys.argv[1])
    b = Tokenizer.from_file(sys.argv[2])
    text = open(sys.argv[3], encoding='utf-8').read()[: int(sys.argv[4]) if len(sys.argv) > 4 else 200_000]
    text += " It's 2026 — café 東京 🙂\t tabs  and\n\n newlines <|endoftext|>"
    ia, ib = a.encode(text).ids, b.encode(text).ids
    if ia != ib:
        i = next((k for k, (x, y) in enumerate(zip(ia, ib)) if x != y), min(len(ia), len(ib)))
        sys.exit(f'ids differ at position {i}: {ia[i:i + 8]} vs {ib[i:i + 8]} ({len(ia)} vs {len(ib)} ids)')
    if a.decode(ia) != b.decode(ib):
        sys.exit('decoded text differs')
    print(f'ok: {len(ia)} ids equal')


if __name__ == '__main__':
    main()
