#!/usr/bin/env python3
"""The budget curve: mean KLD against bits per weight, drawn as a self-contained SVG.

    scripts/budget_curve.py WORK --csv DATA.csv [--svg CURVE.svg] [--title TEXT]
    scripts/budget_curve.py DATA.csv --svg CURVE.svg [--title TEXT]

WORK is the folder scripts/budget_table.sh fills (any model): every results/drift-NAME.json with
its NAME.gguf becomes a row of DATA.csv; bits per weight are 8 x (bytes of all tensors) /
(parameters), read from the GGUF's tensor table. The file name's prefix says what it is:

    lq-T      llama-quantize's file type T with the importance matrix   (marked points)
    mix-T     smelt's rendition of llama.cpp's T mix, same rounding     (hollow points)
    ng-T, ngbpw-B   smelt budgets without Q4_1/Q5_1, importance-weighted rounding   (a line)
    gq-T, gqbpw-B   the same budgets rounded by GPTQ                    (a line)
    budget-T  smelt budget with every candidate                         (CSV only)

The CSV is the figure's data: the second form redraws the figure from it alone. Points with a
mean KLD of 0 cannot sit on the log axis; they stay in the CSV and the figure says how many were
left out. Python's standard library only.
"""
import argparse
import csv
import glob
import html
import json
import math
import os
import struct
import sys

# ggml type id -> (elements per block, bytes per block)
GGML_BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}

SERIES = {  # prefix -> (series key, legend)
    'ng': ('budget_imatrix', 'smelt budget, importance-weighted rounding'),
    'ngbpw': ('budget_imatrix', 'smelt budget, importance-weighted rounding'),
    'gq': ('budget_gptq', 'smelt budget, GPTQ rounding'),
    'gqbpw': ('budget_gptq', 'smelt budget, GPTQ rounding'),
    'lq': ('llama', 'llama-quantize + importance matrix'),
    'mix': ('llama_mix_smelt', "llama.cpp's mix, smelt's rounding"),
    'budget': ('budget_all', 'smelt budget, every candidate'),
}
FIELDS = ['file', 'series', 'label', 'bits_per_weight', 'file_bytes', 'tensor_bytes', 'parameters',
          'mean_kld', 'kld_stderr', 'ppl_ratio', 'top1_agreement']


def gguf_tensor_sizes(path):
    """(bytes of all tensors, elements of all tensors) from a GGUF's tensor table."""
    with open(path, 'rb') as f:
        def read(fmt):
            n = struct.calcsize(fmt)
            return struct.unpack('<' + fmt, f.read(n))

        def string():
            (n,) = read('Q')
            return f.read(n)

        scalar = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}

        def skip(t):
            if t == 8:
                string()
            elif t == 9:
                (et,) = read('I')
                (n,) = read('Q')
                if et in scalar:
                    f.seek(n * struct.calcsize(scalar[et]), 1)
                else:
                    for _ in range(n):
                        skip(et)
            else:
                f.seek(struct.calcsize(scalar[t]), 1)

        if f.read(4) != b'GGUF':
            raise SystemExit(f'{path}: not a GGUF file')
        read('I')
        n_tensors, n_kv = read('QQ')
        for _ in range(n_kv):
            string()
            (t,) = read('I')
            skip(t)
        total_bytes = total_elems = 0
        for _ in range(n_tensors):
            name = string()
            (nd,) = read('I')
            dims = read('Q' * nd)
            (t,) = read('I')
            read('Q')
            if t not in GGML_BLOCKS:
                raise SystemExit(f'{path}: tensor {name.decode(errors="replace")} has ggml type {t}, not in the table')
            per, size = GGML_BLOCKS[t]
            elems = math.prod(dims)
            total_bytes += elems // per * size
            total_elems += elems
        return total_bytes, total_elems


def collect(work):
    rows = []
    for path in sorted(glob.glob(os.path.join(work, 'results', 'drift-*.json'))):
        name = os.path.basename(path)[len('drift-'):-len('.json')]
        prefix, _, label = name.partition('-')
        gguf = os.path.join(work, name + '.gguf')
        if prefix not in SERIES or not os.path.exists(gguf):
            continue
        d = json.load(open(path))
        tb, params = gguf_tensor_sizes(gguf)
        rows.append({
            'file': name, 'series': SERIES[prefix][0], 'label': f'{label} bpw' if prefix.endswith('bpw') else label,
            'bits_per_weight': f'{8 * tb / params:.4f}', 'file_bytes': os.path.getsize(gguf), 'tensor_bytes': tb,
            'parameters': params, 'mean_kld': f"{d['kld']['mean']:.6g}", 'kld_stderr': f"{d['kld']['stderr']:.3g}",
            'ppl_ratio': f"{d['ppl_ratio']:.5f}", 'top1_agreement': f"{d['top1_agreement']:.5f}",
        })
    rows.sort(key=lambda r: (r['series'], float(r['bits_per_weight'])))
    return rows


def draw(rows, title):
    W, H = 760, 470
    L, R, T, B = 78, 250, 44, 56
    pts = [r for r in rows if float(r['mean_kld']) > 0 and r['series'] != 'budget_all']
    dropped = len([r for r in rows if r['series'] != 'budget_all']) - len(pts)
    if not pts:
        raise SystemExit('no points with a mean KLD above 0 to draw')
    xs = [float(r['bits_per_weight']) for r in pts]
    ks = [float(r['mean_kld']) for r in pts]
    x0, x1 = math.floor(min(xs) * 2) / 2, math.ceil(max(xs) * 2) / 2
    if x1 <= x0:
        x1 = x0 + 0.5
    # The log axis runs between 1-2-5 steps just outside the data (a little headroom above).
    steps = [m * 10.0 ** p for p in range(-12, 4) for m in (1, 2, 5)]
    kmin, kmax = min(ks) / 1.15, max(ks) * 1.4
    y0 = math.log10(max(s for s in steps if s <= kmin))
    y1 = math.log10(min(s for s in steps if s >= kmax))

    def px(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(k):
        return T + (y1 - math.log10(k)) / (y1 - y0) * (H - T - B)

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="24" font-size="14" font-weight="bold">{e(title)}</text>']
    # Grid: decades (labelled) and 2, 5 within them; x every 0.5 bits.
    for p in range(math.floor(y0), math.ceil(y1) + 1):
        for m in (1, 2, 5):
            k = m * 10.0 ** p
            if not (y0 - 1e-9 <= math.log10(k) <= y1 + 1e-9):
                continue
            y = py(k)
            out.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#ccc" if m == 1 else "#eee"}"/>')
            if m == 1 or y1 - y0 <= 3:
                out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{k:g}</text>')
    x = x0
    while x <= x1 + 1e-9:
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{T}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
        x += 0.5
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{(L + W - R) / 2:.1f}" y="{H - 16}" text-anchor="middle">bits per weight '
               '(8 × bytes of all tensors ÷ parameters)</text>')
    out.append(f'<text transform="translate(20 {(T + H - B) / 2:.1f}) rotate(-90)" text-anchor="middle">'
               'mean KLD against the base (log scale)</text>')

    def marker(kind, x, y, color):
        if kind == 'circle':
            return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'
        if kind == 'hollow':
            return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="white" stroke="{color}" stroke-width="1.5"/>'
        if kind == 'square':
            return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}"/>'
        return (f'<path d="M{x:.1f} {y - 6:.1f} L{x + 6:.1f} {y:.1f} L{x:.1f} {y + 6:.1f} '
                f'L{x - 6:.1f} {y:.1f} Z" fill="{color}"/>')

    styles = [  # series, legend, colour, marker, line, label points
        ('budget_imatrix', SERIES['ng'][1], '#1f6fb4', 'circle', True, False),
        ('budget_gptq', SERIES['gq'][1], '#d9711c', 'square', True, False),
        ('llama_mix_smelt', SERIES['mix'][1], '#777', 'hollow', False, False),
        ('llama', SERIES['lq'][1], '#111', 'diamond', False, True),
    ]
    legend_y = T + 6
    for key, legend, color, kind, line, labelled in styles:
        s = sorted((r for r in pts if r['series'] == key), key=lambda r: float(r['bits_per_weight']))
        if not s:
            continue
        if line and len(s) > 1:
            d = ' '.join(f'{"M" if i == 0 else "L"}{px(float(r["bits_per_weight"])):.1f} {py(float(r["mean_kld"])):.1f}'
                         for i, r in enumerate(s))
            out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        for r in s:
            x, k = float(r['bits_per_weight']), float(r['mean_kld'])
            se = float(r['kld_stderr'] or 0)
            if se > 0 and k - se > 0:
                out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(k + se):.1f}" y2="{py(k - se):.1f}" '
                           f'stroke="{color}"/>')
            out.append(f'<g><title>{e(r["file"])}: {x:.3f} bits per weight, mean KLD {k:g}</title>'
                       f'{marker(kind, px(x), py(k), color)}</g>')
            if labelled:
                out.append(f'<text x="{px(x) + 8:.1f}" y="{py(k) - 6:.1f}" fill="{color}">{e(r["label"])}</text>')
        lx = W - R + 16
        out.append(marker(kind, lx + 10, legend_y + 8, color))
        if line:
            out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{legend_y + 8}" y2="{legend_y + 8}" stroke="{color}" stroke-width="1.8"/>')
        words, lines = legend.split(), ['']
        for w in words:
            if len(lines[-1]) + len(w) > 26:
                lines.append('')
            lines[-1] = (lines[-1] + ' ' + w).strip()
        for i, t in enumerate(lines):
            out.append(f'<text x="{lx + 28}" y="{legend_y + 12 + 14 * i}">{e(t)}</text>')
        legend_y += 14 * len(lines) + 14
    if dropped:
        out.append(f'<text x="{W - R + 16}" y="{legend_y + 12}" fill="#777">{dropped} point(s) with mean KLD 0</text>')
        out.append(f'<text x="{W - R + 16}" y="{legend_y + 26}" fill="#777">not drawn (log axis)</text>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('source', help="budget_table.sh's WORK folder, or a CSV this script wrote")
    ap.add_argument('--csv', help='write the data (from a WORK folder) here')
    ap.add_argument('--svg', help='write the figure here')
    ap.add_argument('--title', default='Mean KLD vs bits per weight')
    a = ap.parse_args()
    if os.path.isdir(a.source):
        rows = collect(a.source)
        if not rows:
            raise SystemExit(f'{a.source}: no results/drift-*.json with its GGUF')
        if a.csv:
            with open(a.csv, 'w', newline='') as f:
                w = csv.DictWriter(f, fieldnames=FIELDS, lineterminator='\n')
                w.writeheader()
                w.writerows(rows)
    else:
        with open(a.source, newline='') as f:
            rows = list(csv.DictReader(f))
    if not (a.csv or a.svg):
        ap.error('give --csv and/or --svg')
    if a.svg:
        with open(a.svg, 'w') as f:
            f.write(draw(rows, a.title))


if __name__ == '__main__':
    sys.exit(main())
