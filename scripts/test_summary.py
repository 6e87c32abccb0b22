#!/usr/bin/env python3
"""Prints one plain closing line for a `swift test` log: "tests: N passed, M failed, K skipped",
from XCTest's last "Executed N tests, with [K tests skipped and] M failures" summary."""
import re, sys

text = open(sys.argv[1], errors='replace').read()
runs = re.findall(r'Executed (\d+) tests?, with (?:(\d+) tests? skipped and )?(\d+) failures?', text)
if not runs:
    print('tests: 0 passed, 1 failed (no XCTest summary found)')
    sys.exit(1)
total, skipped, failed = (int(x or 0) for x in runs[-1])
print(f'tests: {total - failed - skipped} passed, {failed} failed, {skipped} skipped')
