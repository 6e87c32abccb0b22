#!/usr/bin/env python3
"""Makes golden/safetensors/: small safetensors files written by the Python `safetensors` package
(its framework-free `serialize_file` over raw buffers), and for each an `.expected.json` listing every tensor's
dtype, shape and bytes (hex) as the script put them in. Smelt's reader must return exactly these.

    python3 golden/make_safetensors_golden.py
"""
import json, os, sys
import numpy as np
import safetensors

SEED = 20261129
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'safetensors')


def f32_to_bf16_bytes(a):
    """bfloat16 by round-to-nearest-even on the f32 bit pattern (numpy has no bf16)."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return rounded.tobytes()


def tensors(rng):
    t = {}
    def add(name, dtype, shape, data):
        assert isinstance(data, bytes)
        t[name] = {'dtype': dtype, 'shape': list(shape), 'data': data}
    add('f64.vector', 'F64', [5], rng.standard_normal(5).astype('<f8').tobytes())
    add('f32.matrix', 'F32', [3, 4], rng.standard_normal((3, 4)).astype('<f4').tobytes())
    add('f16.cube', 'F16', [2, 3, 4], rng.standard_normal((2, 3, 4)).astype('<f2').tobytes())
    add('bf16.matrix', 'BF16', [4, 2], f32_to_bf16_bytes(rng.standard_normal((4, 2))))
    add('i64.ids', 'I64', [6], rng.integers(-2**40, 2**40, 6).astype('<i8').tobytes())
    add('i32.ids', 'I32', [2, 2], rng.integers(-2**30, 2**30, 4).astype('<i4').tobytes())
    add('i16.ids', 'I16', [3], rng.integers(-30000, 30000, 3).astype('<i2').tobytes())
    add('i8.ids', 'I8', [7], rng.integers(-128, 127, 7).astype('i1').tobytes())
    add('u8.bytes', 'U8', [9], rng.integers(0, 255, 9).astype('u1').tobytes())
    add('bool.mask', 'BOOL', [2, 3], rng.integers(0, 2, 6).astype('u1').tobytes())
    add('f8_e4m3.raw', 'F8_E4M3', [4], rng.integers(0, 0x7e, 4).astype('u1').tobytes())
    add('f8_e5m2.raw', 'F8_E5M2', [4], rng.integers(0, 0x7b, 4).astype('u1').tobytes())
    add('scalar', 'F32', [], np.array(3.25, dtype='<f4').tobytes())
    add('empty', 'F32', [0, 3], b'')
    return t


TORCH_NAMES = {'F64': 'float64', 'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16', 'I64': 'int64',
               'I32': 'int32', 'I16': 'int16', 'I8': 'int8', 'U8': 'uint8', 'BOOL': 'bool',
               'F8_E4M3': 'float8_e4m3fn', 'F8_E5M2': 'float8_e5m2'}


def save(tensor_dict, path, metadata):
    """safetensors >= 0.8 takes raw buffers as TensorSpec(dtype, shape, data_ptr, data_len)."""
    keep, specs = [], {}
    for name, v in tensor_dict.items():
        buf = np.frombuffer(v['data'] or b'\0', dtype=np.uint8).copy()
        keep.append(buf)
        specs[name] = safetensors.TensorSpec(dtype=TORCH_NAMES[v['dtype']], shape=v['shape'],
                                             data_ptr=buf.ctypes.data, data_len=len(v['data']))
    safetensors.serialize_file(specs, path, metadata=metadata)
    del keep


def expected(tensor_dict, metadata):
    return {
        'metadata': metadata,
        'tensors': {name: {'dtype': v['dtype'], 'shape': v['shape'], 'hex': v['data'].hex()}
                    for name, v in tensor_dict.items()},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    t = tensors(rng)
    meta = {'format': 'pt', 'made_by': 'golden/make_safetensors_golden.py'}
    save(t, os.path.join(OUT, 'mixed.safetensors'), meta)
    with open(os.path.join(OUT, 'mixed.expected.json'), 'w') as f:
        json.dump(expected(t, meta), f, indent=1, sort_keys=True)

    # A sharded set: two shards written by safetensors, the index written as transformers does.
    shard_dir = os.path.join(OUT, 'sharded')
    os.makedirs(shard_dir, exist_ok=True)
    names = sorted(t)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map, total = {}, 0
    for i, part in enumerate(halves):
        fname = f'model-{i + 1:05d}-of-{len(halves):05d}.safetensors'
        save({n: t[n] for n in part}, os.path.join(shard_dir, fname), {'format': 'pt'})
        for n in part:
            weight_map[n] = fname
            total += len(t[n]['data'])
    with open(os.path.join(shard_dir, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2, sort_keys=True)
    with open(os.path.join(OUT, 'sharded.expected.json'), 'w') as f:
        json.dump(expected(t, {'format': 'pt'}), f, indent=1, sort_keys=True)

    with open(os.path.join(OUT, 'SOURCE.json'), 'w') as f:
        json.dump({'script': 'golden/make_safetensors_golden.py', 'tool': 'safetensors (Python)',
                   'version': safetensors.__version__, 'numpy': np.__version__, 'seed': SEED}, f, indent=1)
        f.write('\n')
    print('wrote', OUT)


if __name__ == '__main__':
    sys.exit(main())
