#!/usr/bin/env python3
"""Log message IDs of the modules (docs/log-messages.md):

- every message logged through httpd's ap_log_* functions, or by the core
  through hb_log (hb_log.h), starts with an ID ("HB0101: ...") from its
  module's range: HB01xx mod_heartbeat, HM02xx mod_heartmonitor, LB03xx
  mod_lbmethod_heartbeat (the core's lines: any of them); its format is a
  string literal (adjacent literals and macros such as APR_SIZE_T_FMT
  between them, over any number of lines, are read as the compiler joins
  them). The glue's callback that passes the core's lines on to httpd
  (location written out, message "%s") is let through: those lines are
  checked where the core writes them;
- every ID is used once and listed in docs/log-messages.md, and every listed
  ID still exists in the code.

Operators grep for these IDs; a message without one, an undocumented or a
reused one is a bug. Each problem is printed with file:line.

Before the tree, the checker checks itself on a small tree of known good and
bad calls (--self-test runs only that).
"""
import os
import re
import sys
import tempfile

SRC = os.environ.get('HB_SRC_DIR') or os.path.join(os.path.dirname(__file__), '..', '..')

ID_PATTERN = r'(?:HB|HM|LB)\d{4}'
ID_RE = re.compile(r'(%s):' % ID_PATTERN)
# The ID range of each module directory; the core (modules/common), which
# every module links, may use any.
RANGES = {'heartbeat': 'HB01', 'heartmonitor': 'HM02', 'lbmethod_heartbeat': 'LB03'}

# The log functions the modules call: (where the location mark stands among
# the arguments as written, the mark, how many arguments it stands for, where
# the message (format or label) stands, the mark counting as one).
LOG_FUNCS = {
    'ap_log_error': (0, 'APLOG_MARK', 3, 4),    # (APLOG_MARK, level, status, s, fmt, ...)
    'ap_log_perror': (0, 'APLOG_MARK', 3, 4),   # (APLOG_MARK, level, status, p, fmt, ...)
    'ap_log_rerror': (0, 'APLOG_MARK', 3, 4),   # (APLOG_MARK, level, status, r, fmt, ...)
    'ap_log_cerror': (0, 'APLOG_MARK', 3, 4),   # (APLOG_MARK, level, status, c, fmt, ...)
    'ap_log_cserror': (0, 'APLOG_MARK', 3, 5),  # (APLOG_MARK, level, status, c, s, fmt, ...)
    'ap_log_data': (0, 'APLOG_MARK', 3, 3),     # (APLOG_MARK, level, s, label, data, ...)
    'ap_log_rdata': (0, 'APLOG_MARK', 3, 3),    # (APLOG_MARK, level, r, label, ...)
    'ap_log_cdata': (0, 'APLOG_MARK', 3, 3),    # (APLOG_MARK, level, c, label, ...)
    'ap_log_csdata': (0, 'APLOG_MARK', 3, 4),   # (APLOG_MARK, level, c, s, label, ...)
    'hb_log': (2, 'HB_LOG_MARK', 2, 3),         # the core's (hb_log.h): (log, level,
                                                # HB_LOG_MARK, fmt, ...)
}
# A call that writes the mark out passes on a location it was given: the
# glue's callback for the core's lines, ap_log_error(file, line,
# APLOG_MODULE_INDEX, level, 0, s, "%s", msg). Its message is then exactly
# FORWARDED; the line itself was checked where the core wrote it.
FORWARDED = '%s'
# ap_log_* functions that log no message of ours.
NOT_MESSAGES = {'ap_log_pid', 'ap_log_command_line', 'ap_log_mpm_common'}

TOKEN_RE = re.compile(r'''
    (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>(?:u8|[uUL])?"(?:\\.|[^"\\\n])*")
  | (?P<char>(?:u8|[uUL])?'(?:\\.|[^'\\\n])*')
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<space>\s+)
  | (?P<other>.)
''', re.S | re.X)


def tokens(text):
    """(kind, text, line) of every token but comments and white space."""
    line = 1
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind not in ('comment', 'space'):
            yield kind, m.group(), line
        line += m.group().count('\n')


def literal_text(tok):
    """The characters of a string literal token, escapes left as written."""
    return tok[tok.index('"') + 1:-1]


def call_args(toks, i):
    """toks[i] is the '(' of a call: its arguments as lists of tokens, and
    the index after the ')'; None if the file ends first."""
    args, cur, depth = [], [], 0
    for j in range(i, len(toks)):
        t = toks[j][1]
        if t in '([{' and toks[j][0] == 'other':
            depth += 1
            if depth == 1:
                continue
        elif t in ')]}' and toks[j][0] == 'other':
            depth -= 1
            if depth == 0:
                args.append(cur)
                return args, j + 1
        elif t == ',' and depth == 1:
            args.append(cur)
            cur = []
            continue
        cur.append(toks[j])
    return None, len(toks)


def message_prefix(arg):
    """The text of the leading string literals of an argument, joined as
    the compiler joins them, and the line of the first; (None, line) if the
    argument does not start with a literal."""
    line = arg[0][2] if arg else None
    if not arg or arg[0][0] != 'string':
        return None, line
    text = ''
    for kind, tok, _line in arg:
        if kind != 'string':
            break
        text += literal_text(tok)
    return text, line


def scan_file(path, rel, module):
    """-> (IDs: [(id, 'file:line')], problems: [str]) of one source file."""
    with open(path, encoding='utf-8') as f:
        toks = list(tokens(f.read()))
    ids, problems = [], []
    for i, (kind, _tok, line) in enumerate(toks):
        # Any string (adjacent literals joined) that starts with an ID.
        if kind == 'string' and (i == 0 or toks[i - 1][0] != 'string'):
            m = ID_RE.match(message_prefix(toks[i:])[0])
            if m:
                ids.append((m.group(1), '%s:%d' % (rel, line)))
    want = RANGES.get(module)
    i = 0
    while i < len(toks):
        kind, tok, line = toks[i]
        # A call: the name, then '('; not the declaration or definition of
        # a function of that name, where its type stands before the name.
        is_call = (kind == 'ident' and (tok.startswith('ap_log_') or tok in LOG_FUNCS)
                   and i + 1 < len(toks) and toks[i + 1][1] == '('
                   and not (i > 0 and toks[i - 1][0] == 'ident'))
        if not is_call or tok in NOT_MESSAGES:
            i += 1
            continue
        where = '%s:%d' % (rel, line)
        if tok not in LOG_FUNCS:
            problems.append('%s: %s(): unknown log function; tell test/lint/check_log_ids.py'
                            ' (LOG_FUNCS) which argument is its message' % (where, tok))
            i += 1
            continue
        args, i = call_args(toks, i + 1)
        mark_pos, mark, width, pos = LOG_FUNCS[tok]
        marked = args is not None and len(args) > mark_pos and \
            [t[1] for t in args[mark_pos]] == [mark]
        if not marked:
            pos += width - 1  # the mark written out
        if args is None or len(args) <= pos:
            problems.append('%s: %s(): cannot find its message (argument %d, %s as argument'
                            ' %d)' % (where, tok, pos + 1, mark, mark_pos + 1))
            continue
        text, mline = message_prefix(args[pos])
        where = '%s:%d' % (rel, mline or line)
        if not marked and len(args[pos]) == 1 and text == FORWARDED:
            continue
        if text is None:
            problems.append('%s: %s(): the message is not a string literal, so it cannot be'
                            ' seen to start with a log ID' % (where, tok))
            continue
        m = re.match(r'(%s):' % ID_PATTERN, text)
        if not m:
            problems.append('%s: %s() message "%s" does not start with a log ID'
                            ' ("%sNN: ...", docs/log-messages.md)'
                            % (where, tok, text[:40], want or 'HB01NN/HM02NN/LB03'))
        elif want and not m.group(1).startswith(want):
            problems.append('%s: %s is not in the range of modules/%s (%sNN)'
                            % (where, m.group(1), module, want))
    return ids, problems


def check(src):
    """All problems of the tree at src, and how many IDs it uses."""
    found, problems = {}, []
    mod_root = os.path.join(src, 'modules')
    for root, dirs, files in os.walk(mod_root):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(('.c', '.h')):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            module = os.path.relpath(root, mod_root).split(os.sep)[0]
            ids, probs = scan_file(path, rel, module)
            problems += probs
            for ident, where in ids:
                found.setdefault(ident, []).append(where)
    with open(os.path.join(src, 'docs', 'log-messages.md'), encoding='utf-8') as f:
        docs = set(re.findall(r'^\| (%s) \|' % ID_PATTERN, f.read(), re.M))
    for ident, places in sorted(found.items()):
        if len(places) > 1:
            problems.append('%s used more than once: %s' % (ident, ', '.join(places)))
        if ident not in docs:
            problems.append('%s: %s is not in docs/log-messages.md' % (places[0], ident))
    for ident in sorted(docs - set(found)):
        problems.append('docs/log-messages.md: %s is documented but no longer used' % ident)
    if not found:
        problems.append('no log IDs found at all: is HB_SRC_DIR right?')
    return problems, len(found)


# ---- the checker's own test -----------------------------------------------

SELF_TEST_C = r'''
#include "http_log.h"
static const char q = '"';  /* a quote in a character literal */
/* ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "commented out, no ID"); */
static const char *text = "ap_log_error(APLOG_MARK, 0, 0, s, \"in a string\")";
void f(server_rec *s, request_rec *r, conn_rec *c, const char *msg)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "HB0101: fine");
    ap_log_error(APLOG_MARK, APLOG_DEBUG, g(1, ")"), s,
                 "HB0102: joined %" APR_SIZE_T_FMT
                 " over lines", h(2, 3));
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "%s: ready=%u"
                  " seen=%u", "HB0199: not the message", 1);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, msg);
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "HB01" "03: split literal");
    ap_log_cserror(APLOG_MARK, APLOG_INFO, 0, c, s, "HM0201: other module's range");
    ap_log_perror(APLOG_MARK, APLOG_INFO, 0, p, "HB0101: used twice");
    ap_log_perror(APLOG_MARK, APLOG_INFO, 0, p, u8"HB0104: no space after the ID:");
    ap_log_fancy(APLOG_MARK, APLOG_INFO, 0, s, "HB0105: unknown function");
    ap_log_pid(p, "/run/x.pid");
    ap_log_data(APLOG_MARK, APLOG_TRACE8, s, "data without an ID", buf, 4, 0);
    ap_log_error(file, line, APLOG_MODULE_INDEX, (int)level, 0, s, "%s", msg);
    ap_log_error(__FILE__, __LINE__, APLOG_MODULE_INDEX, APLOG_ERR, 0, s, "no ID %s", msg);
    hb_log_send_error(s, 1);
}
void hb_log(const hb_log_t *log, int level, const char *file, int line, const char *fmt, ...);
'''
SELF_TEST_CORE_C = r'''
#include "hb_log.h"
void g(const hb_log_t *log, const char *fmt, const char *x)
{
    hb_log(log, HB_LOG_DEBUG, HB_LOG_MARK, "HM0202: core line %s", x);
    hb_log(log, HB_LOG_WARNING, HB_LOG_MARK,
           "%s: no ID", x);
    hb_log(log, HB_LOG_INFO, HB_LOG_MARK, fmt, x);
}
'''
SELF_TEST_DOCS = '| ID | ... |\n| HB0101 | warn |\n| HB0102 | debug |\n| HB0103 | info |\n' \
                 '| HB0105 | info |\n| HB0106 | info |\n| HM0202 | debug |\n'
# What the checker must say about the tree above, every problem exactly once.
SELF_TEST_EXPECT = [
    'modules/heartbeat/mod_x.c:12: ap_log_rerror() message "%s: ready=%u seen=%u" does not'
    ' start with a log ID',
    'modules/heartbeat/mod_x.c:14: ap_log_error(): the message is not a string literal',
    'modules/heartbeat/mod_x.c:16: HM0201 is not in the range of modules/heartbeat',
    'modules/heartbeat/mod_x.c:19: ap_log_fancy(): unknown log function',
    'modules/heartbeat/mod_x.c:21: ap_log_data() message "data without an ID" does not start',
    'HB0101 used more than once: modules/heartbeat/mod_x.c:7, modules/heartbeat/mod_x.c:17',
    'modules/heartbeat/mod_x.c:13: HB0199 is not in docs/log-messages.md',
    'modules/heartbeat/mod_x.c:16: HM0201 is not in docs/log-messages.md',
    'modules/heartbeat/mod_x.c:18: HB0104 is not in docs/log-messages.md',
    'docs/log-messages.md: HB0106 is documented but no longer used',
    'modules/heartbeat/mod_x.c:23: ap_log_error() message "no ID %s" does not start',
    'modules/common/hm_core.c:6: hb_log() message "%s: no ID" does not start',
    'modules/common/hm_core.c:7: hb_log(): the message is not a string literal',
]


def self_test():
    """Problems of the checker itself: [] when it finds exactly what it
    must in SELF_TEST_C."""
    with tempfile.TemporaryDirectory(prefix='hb-lint-') as tmp:
        os.makedirs(os.path.join(tmp, 'modules', 'heartbeat'))
        os.makedirs(os.path.join(tmp, 'modules', 'common'))
        os.makedirs(os.path.join(tmp, 'docs'))
        with open(os.path.join(tmp, 'modules', 'heartbeat', 'mod_x.c'), 'w') as f:
            f.write(SELF_TEST_C.lstrip('\n'))
        with open(os.path.join(tmp, 'modules', 'common', 'hm_core.c'), 'w') as f:
            f.write(SELF_TEST_CORE_C.lstrip('\n'))
        with open(os.path.join(tmp, 'docs', 'log-messages.md'), 'w') as f:
            f.write(SELF_TEST_DOCS)
        got, _ = check(tmp)
    out = []
    left = list(got)
    for want in SELF_TEST_EXPECT:
        hits = [p for p in left if p.startswith(want)]
        if len(hits) != 1:
            out.append('self-test: expected once, found %d times: %s' % (len(hits), want))
        for p in hits:
            left.remove(p)
    out += ['self-test: unexpected: %s' % p for p in left]
    return out


def main(argv):
    results = []
    problems = self_test()
    results.append(not problems)
    if '--self-test' not in argv:
        tree, count = check(SRC)
        problems += tree
        results.append(not tree)
        print('%d log IDs checked' % count)
    for p in problems:
        print('FAIL:', p)
    print('%d passed, %d failed' % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
