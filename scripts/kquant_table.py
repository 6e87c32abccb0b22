#!/usr/bin/env python3
"""Prints the README's K-quant quality table (markdown) from scripts/kquant_table.sh's work folder.

    python3 scripts/kquant_table.py [WORK]      (default /tmp/smelt-kquant-table)

Rows whose file or drift report is missing are listed as missing, never filled in.
"""
import json, os, sys

W = sys.argv[1] if len(sys.argv) > 1 else '/tmp/smelt-kquant-table'
R = os.path.join(W, 'results')
TYPES = ['Q4_K_M', 'Q6_K', 'Q5_K_M', 'Q4_K_S', 'Q3_K_M', 'Q2_K', 'IQ4_XS']
METHODS = [('lq', 'llama-quantize'), ('lqim', 'llama-quantize + llama-imatrix'),
           ('im', 'smelt imatrix'), ('gptq', 'smelt GPTQ')]


def bits(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    n = sum(int(t.n_elements) for t in r.tensors)
    b = sum(int(t.n_bytes) for t in r.tensors)
    return b, 8 * b / n


def seconds(name):
    p = f'{R}/time-{name}.txt'
    try:
        return float(open(p).read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


print('| type | method | tensor data MiB | bits/weight | PPL | mean KLD | top-1 agreement | time to quantize |')
print('|---|---|---:|---:|---:|---:|---:|---:|')
missing, base = [], None
for t in TYPES:
    for m, label in METHODS:
        name = f'{m}-{t}'
        path = f'{W}/{name}.gguf'
        d = f'{R}/drift-{name}.json'
        if not (os.path.exists(path) and os.path.exists(d)):
            missing.append(f'{t} {label}')
            continue
        j = json.load(open(d))
        base = j['base']['ppl']
        b, bpw = bits(path)
        s = seconds(name)
        print(f"| {t} | {label} | {b / 2**20:.1f} | {bpw:.3f} | {j['candidate']['ppl']:.3f} | "
              f"{j['kld']['mean']:.4f} ± {j['kld']['stderr']:.4f} | {100 * j['top1_agreement']:.2f} % | "
              f"{'%.1f s' % s if s is not None else '—'} |")
if base:
    print(f'\nBase (F32) PPL {base:.3f}.')
if missing:
    parts = []
    for t in TYPES:
        gone = [label for _, label in METHODS if f'{t} {label}' in missing]
        if len(gone) == len(METHODS):
            parts.append(f'{t} (all four)')
        elif gone:
            parts.append(f'{t} ({", ".join(gone)})')
    print('\nNot measured (out of time): ' + '; '.join(parts) + '.')
