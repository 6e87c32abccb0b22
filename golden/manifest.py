#!/usr/bin/env python3
"""Rebuilds golden/MANIFEST.json: every file under golden/<group>/ with its sha256 and the
provenance its group's SOURCE.json gives (script, tool and version, seed).

    python3 golden/manifest.py          # rewrite MANIFEST.json
    python3 golden/manifest.py --check  # exit 1 if any file differs from the manifest
"""
import hashlib, json, os, sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def scan():
    files = []
    for group in sorted(os.listdir(ROOT)):
        gdir = os.path.join(ROOT, group)
        if not os.path.isdir(gdir) or group.startswith(('.', '__')):
            continue
        sources = {}
        for dirpath, _, names in os.walk(gdir):
            # A folder's files take the provenance of the nearest SOURCE.json (its own or a parent's).
            if 'SOURCE.json' in names:
                with open(os.path.join(dirpath, 'SOURCE.json')) as f:
                    sources[dirpath] = json.load(f)
            else:
                sources[dirpath] = sources[os.path.dirname(dirpath)]
            source = sources[dirpath]
            for name in sorted(names):
                if name == 'SOURCE.json' or name.endswith('.pyc'):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                with open(path, 'rb') as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                files.append({'file': rel, 'sha256': digest, 'bytes': os.path.getsize(path), 'source': source})
    files.sort(key=lambda e: e['file'])
    return {'files': files}


def main():
    manifest_path = os.path.join(ROOT, 'MANIFEST.json')
    current = scan()
    if '--check' in sys.argv:
        with open(manifest_path) as f:
            recorded = json.load(f)
        rec = {e['file']: e['sha256'] for e in recorded['files']}
        cur = {e['file']: e['sha256'] for e in current['files']}
        bad = sorted(k for k in set(rec) | set(cur) if rec.get(k) != cur.get(k))
        for k in bad:
            print(f'golden file differs from MANIFEST.json: {k} (recorded {rec.get(k)}, now {cur.get(k)})')
        sys.exit(1 if bad else 0)
    with open(manifest_path, 'w') as f:
        json.dump(current, f, indent=1)
        f.write('\n')
    print(f'MANIFEST.json: {len(current["files"])} files')


if __name__ == '__main__':
    main()
