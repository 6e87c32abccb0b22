#!/usr/bin/env python3
"""Prints the README's quantization table (markdown) from scripts/quant_table.sh's work folder.

    python3 scripts/quant_table.py [WORK]      (default /tmp/smelt-quant-table)
"""
import json, os, re, sys

W = sys.argv[1] if len(sys.argv) > 1 else '/tmp/smelt-quant-table'
R = os.path.join(W, 'results')
ROWS = [
    ('q8_0', 'smelt rtn', 'rtn-q8_0'), ('q8_0', 'smelt imatrix', 'im-q8_0'), ('q8_0', 'smelt gptq', 'gptq-q8_0'),
    ('q4_1', 'smelt rtn', 'rtn-q4_1'), ('q4_1', 'smelt imatrix', 'im-q4_1'), ('q4_1', 'smelt gptq', 'gptq-q4_1'),
    ('q4_0', 'smelt rtn', 'rtn-q4_0'), ('q4_0', 'smelt imatrix', 'im-q4_0'), ('q4_0', 'smelt gptq', 'gptq-q4_0'),
    ('q4_0, emb. q8_0', 'smelt rtn', 'rtn-q4_0-q8e'), ('q4_0, emb. q8_0', 'smelt imatrix', 'im-q4_0-q8e'),
    ('q4_0, emb. q8_0', 'smelt gptq', 'gptq-q4_0-q8e'),
    ('q4_0, emb. q8_0', 'llama-quantize', 'lq-q4_0'),
    ('q4_0, emb. q8_0', 'llama-quantize + llama-imatrix', 'lq-q4_0-im'),
    ('q4_0, emb. q8_0', "llama-quantize + smelt's imatrix", 'lq-q4_0-smeltim'),
    ('q4_0', "smelt imatrix with llama-imatrix's", 'im-llama-q4_0'),
]


def read(path):
    return open(path).read() if os.path.exists(path) else None


def seconds(name):
    t = read(f'{R}/time-{name}.txt')
    try:
        return float(t.split()[-1]) if t else None
    except ValueError:
        return None


def llama_ppl(name):
    t = read(f'{R}/lppl10-{name}.txt')
    m = t and re.search(r'Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)', t)
    return float(m.group(1)) if m else None


def smelt_ppl(name):
    t = read(f'{R}/sppl10-{name}.json')
    try:
        return json.loads(t)['ppl'] if t else None
    except (ValueError, KeyError):
        return None


def bits(name):
    from gguf import GGUFReader
    r = GGUFReader(f'{W}/{name}.gguf')
    n = sum(int(t.n_elements) for t in r.tensors)
    b = sum(int(t.n_bytes) for t in r.tensors)
    return 8 * b / n


print('| tensors | method | size MiB | bits/weight | PPL | PPL ratio | mean KLD | top-1 agreement | time to quantize |')
print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
base = None
for kind, method, name in ROWS:
    if not os.path.exists(f'{W}/{name}.gguf'):
        continue
    d = read(f'{R}/drift-{name}.json')
    if d:
        j = json.loads(d)
        base = j['base']['ppl']
        cells = [f"{j['candidate']['ppl']:.3f}", f"{j['ppl_ratio']:.4f}",
                 f"{j['kld']['mean']:.4f} ± {j['kld']['stderr']:.4f}", f"{100 * j['top1_agreement']:.2f} %"]
    else:
        cells = ['—'] * 4
    s = seconds(name)
    print(f"| {kind} | {method} | {os.path.getsize(f'{W}/{name}.gguf') / 2**20:.1f} | {bits(name):.3f} | "
          + ' | '.join(cells) + f" | {'%.1f s' % s if s is not None else '—'} |")
if base:
    print(f'\nBase (F32) PPL {base:.4f}.')
print('\n| file | llama-perplexity (10 chunks) | smelt perplexity --activations q8 --kv f16 | difference |')
print('|---|---:|---:|---:|')
for name in ['base-f32'] + [r[2] for r in ROWS]:
    a, b = llama_ppl(name), smelt_ppl(name)
    if a is None and b is None:
        continue
    diff = f'{100 * (b - a) / a:+.3f} %' if a and b else '—'
    print(f"| {name} | {a if a else '—'} | {'%.4f' % b if b else '—'} | {diff} |")
