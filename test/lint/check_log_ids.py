#!/usr/bin/env python3
"""Every log message ID in the modules is unique and listed in
docs/log-messages.md, and every listed ID still exists in the code.

Operators grep for these IDs; an undocumented or reused one is a bug.
"""
import os
import re
import sys

SRC = os.environ.get('HB_SRC_DIR') or os.path.join(os.path.dirname(__file__), '..', '..')
ID_RE = re.compile(r'"((?:HB|HM|LB)\d{4}):')


def code_ids():
    found = {}
    for root, _dirs, files in os.walk(os.path.join(SRC, 'modules')):
        for name in files:
            if not name.endswith('.c'):
                continue
            path = os.path.join(root, name)
            with open(path, encoding='utf-8') as f:
                for lineno, line in enumerate(f, 1):
                    for m in ID_RE.finditer(line):
                        found.setdefault(m.group(1), []).append('%s:%d' % (path, lineno))
    return found


def doc_ids():
    with open(os.path.join(SRC, 'docs', 'log-messages.md'), encoding='utf-8') as f:
        return set(re.findall(r'^\| ((?:HB|HM|LB)\d{4}) \|', f.read(), re.M))


def main():
    code = code_ids()
    docs = doc_ids()
    problems = []
    for ident, places in sorted(code.items()):
        if len(places) > 1:
            problems.append('%s used more than once: %s' % (ident, ', '.join(places)))
        if ident not in docs:
            problems.append('%s (%s) is not in docs/log-messages.md' % (ident, places[0]))
    for ident in sorted(docs - set(code)):
        problems.append('%s is documented but no longer used' % ident)
    if not code:
        problems.append('no log IDs found at all: is HB_SRC_DIR right?')
    for p in problems:
        print('FAIL:', p)
    ok = 0 if problems else 1
    print('%d log IDs checked' % len(code))
    print('%d passed, %d failed' % (ok, 1 - ok))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
