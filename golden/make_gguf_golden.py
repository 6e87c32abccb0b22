#!/usr/bin/env python3
"""Makes the GGUF golden files in golden/gguf/ with gguf-py's GGUFWriter, and beside each one the
description gguf-py's GGUFReader gives of it (golden/check_gguf.py's "dump" format), which
Smelt's reader must match exactly.

    python3 golden/make_gguf_golden.py && python3 golden/manifest.py

Files:
  mixed.gguf        every metadata value type (scalars, arrays of each, nested arrays, an empty
                    string, unicode, float specials), typed hyperparameter and tokenizer keys,
                    alignment 64, tensors F32 1-D, F16 2-D, BF16 3-D, Q8_0 and Q4_0 (raw block
                    bytes), I32, a 4-D F32.
  v2.gguf           a small file with its version field set to 2 (same layout as 3).
  split-0000i-of-00003.gguf  a split set gguf-py writes with split_max_tensors=2.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_gguf import dump  # noqa: E402

SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gguf')


def write_json(path, obj):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write('\n')


def raw_blocks(rng, qtype, shape):
    """Random raw block bytes for a quantized tensor of `shape` (outermost first), with the
    f16 scale of each block kept finite."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    nblocks = rows * shape[-1] // block
    data = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.1, size=nblocks).astype(np.float16)
    data[:, 0:2] = scales.view(np.uint8).reshape(nblocks, 2)
    return data.reshape(*shape[:-1], shape[-1] // block * size)


def make_mixed(rng):
    path = os.path.join(OUT, 'mixed.gguf')
    w = gguf.GGUFWriter(path, arch='llama')
    w.add_custom_alignment(64)
    w.add_name('Smelt golden — ünïcode 🦙')
    # One key per scalar type, at the edges of their ranges.
    w.add_uint8('test.uint8', 255)
    w.add_int8('test.int8', -128)
    w.add_uint16('test.uint16', 65535)
    w.add_int16('test.int16', -32768)
    w.add_uint32('test.uint32', 4294967295)
    w.add_int32('test.int32', -2147483648)
    w.add_uint64('test.uint64', 18446744073709551615)
    w.add_int64('test.int64', -9223372036854775808)
    w.add_float32('test.float32', 0.1)
    w.add_float64('test.float64', 3.141592653589793)
    w.add_bool('test.bool_true', True)
    w.add_bool('test.bool_false', False)
    w.add_string('test.string', 'hello\n"world"\t\\ 😀')
    w.add_key_value('test.empty_string', '', T.STRING)
    # One array per element type.
    arrays = [
        ('uint8', T.UINT8, [0, 1, 255]), ('int8', T.INT8, [-128, 0, 127]),
        ('uint16', T.UINT16, [0, 65535]), ('int16', T.INT16, [-32768, 32767]),
        ('uint32', T.UINT32, [0, 4294967295]), ('int32', T.INT32, [-2147483648, 2147483647, 0]),
        ('uint64', T.UINT64, [0, 18446744073709551615]), ('int64', T.INT64, [-9223372036854775808, 1]),
        ('float32', T.FLOAT32, [0.5, -0.0, float('inf'), float('-inf'), float('nan'), 1e-45]),
        ('float64', T.FLOAT64, [2.5, -1e300, float('nan')]),
        ('bool', T.BOOL, [True, False, True]), ('string', T.STRING, ['a', '', 'ünï', 'tab\there']),
    ]
    for name, t, values in arrays:
        w.add_key_value(f'test.array.{name}', values, T.ARRAY, sub_type=t)
    # Nested arrays (gguf-py infers inner types: int → int32, str → string).
    w.add_key_value('test.nested.int32', [[1, 2], [3], [4, 5, 6]], T.ARRAY)
    w.add_key_value('test.nested.string', [['a'], ['b', 'c']], T.ARRAY)
    w.add_key_value('test.nested.deep', [[[[1]], [[2, 3]]]], T.ARRAY)
    # Typed hyperparameters and tokenizer, as convert_hf_to_gguf.py writes them.
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_block_count(2)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_layer_norm_eps(1e-6)
    w.add_vocab_size(8)
    w.add_rope_dimension_count(16)
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('smollm')
    w.add_token_list(['<s>', '</s>', 'a', 'b', 'ab', 'Ġc', 'ü', '🦙'])
    w.add_token_types([3, 3, 1, 1, 1, 1, 1, 6])
    w.add_token_merges(['a b', 'Ġ c'])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_pad_token_id(1)
    w.add_add_bos_token(True)
    w.add_chat_template('{% for m in messages %}{{ m.content }}\n{% endfor %}')

    w.add_tensor('vec.f32', rng.standard_normal(7).astype(np.float32))
    w.add_tensor('mat.f16', rng.standard_normal((3, 5)).astype(np.float16))
    bf16 = (rng.standard_normal((2, 3, 4)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor('cube.bf16', bf16.view(np.uint8).reshape(2, 3, 8), raw_dtype=Q.BF16)
    w.add_tensor('mat.q8_0', raw_blocks(rng, Q.Q8_0, (2, 64)), raw_dtype=Q.Q8_0)
    w.add_tensor('mat.q4_0', raw_blocks(rng, Q.Q4_0, (3, 32)), raw_dtype=Q.Q4_0)
    w.add_tensor('ids.i32', rng.integers(-1000, 1000, size=5, dtype=np.int32))
    w.add_tensor('hyper.f32', rng.standard_normal((2, 1, 3, 2)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    d = dump(path)
    # The reader's description must say what was written (the golden data is checked, not assumed).
    got = {m['key']: m['value'] for m in d['metadata']}

    def bits(t, v):
        return struct.pack('>f' if t == T.FLOAT32 else '>d', v).hex()

    for name, t, values in arrays:
        want = [bits(t, v) if t in (T.FLOAT32, T.FLOAT64) else v for v in values]
        assert got[f'test.array.{name}'] == {'type': 'array', 'element_type': name, 'values': want}, name
    assert got['test.float32'] == {'type': 'float32', 'value': bits(T.FLOAT32, 0.1)}
    assert got['test.uint64'] == {'type': 'uint64', 'value': 18446744073709551615}
    assert got['test.empty_string'] == {'type': 'string', 'value': ''}
    inner = [g['values'] for g in got['test.nested.int32']['values']]
    assert inner == [[1, 2], [3], [4, 5, 6]], inner
    assert d['alignment'] == 64 and all(t['data_offset'] % 64 == 0 for t in d['tensors'])
    assert [t['shape'] for t in d['tensors']] == [[7], [3, 5], [2, 3, 4], [2, 64], [3, 32], [5], [2, 1, 3, 2]]
    write_json(os.path.join(OUT, 'mixed.expected.json'), d)


def make_v2(rng):
    path = os.path.join(OUT, 'v2.gguf')
    w = gguf.GGUFWriter(path, arch='gpt2')
    w.add_uint32('test.answer', 42)
    w.add_tensor('w', rng.standard_normal((2, 3)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, 'r+b') as f:  # version 2 has the same layout; only the number differs
        f.seek(4)
        f.write((2).to_bytes(4, 'little'))
    d = dump(path)
    assert d['version'] == 2
    write_json(os.path.join(OUT, 'v2.expected.json'), d)


def make_split(rng):
    path = os.path.join(OUT, 'split.gguf')
    w = gguf.GGUFWriter(path, arch='llama', split_max_tensors=2)
    w.add_uint32('llama.block_count', 1)
    w.add_string('general.name', 'split golden')
    for i in range(5):
        w.add_tensor(f't{i}', rng.standard_normal((i + 1, 4)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    names = [os.path.join(OUT, f'split-{i:05d}-of-00003.gguf') for i in range(1, 4)]
    assert all(os.path.exists(n) for n in names), names
    write_json(os.path.join(OUT, 'split.expected.json'), [dump(n) for n in names])


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith('.gguf') or name.endswith('.expected.json'):
            os.remove(os.path.join(OUT, name))
    rng = np.random.default_rng(SEED)
    make_mixed(rng)
    make_v2(rng)
    make_split(rng)
    import importlib.metadata
    write_json(os.path.join(OUT, 'SOURCE.json'), {
        'script': 'golden/make_gguf_golden.py', 'tool': 'gguf-py',
        'version': importlib.metadata.version('gguf'), 'numpy': np.__version__, 'seed': SEED,
    })
    for name in sorted(os.listdir(OUT)):
        print(f'{name}: {os.path.getsize(os.path.join(OUT, name))} bytes')


if __name__ == '__main__':
    main()
