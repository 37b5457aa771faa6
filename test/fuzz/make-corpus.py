#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets into test/fuzz/corpus/<target>/.

The seeds are committed; this script documents where they come from and
rewrites them (deterministically) if the formats change:

    python3 test/fuzz/make-corpus.py

Each seed is a small realistic input or an edge case the fuzzer should
start from: what our sender and the stock sender emit, what our monitor and
the stock monitor write, and one example of every rule the parsers enforce.
Crash reproducers found later are added by hand as regress-* files and are
not touched by this script.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')

# --------------------------------------------------------------------------
# fuzz_packet: one datagram or POST body per file

OURS = b'v=1&ready=75&busy=0&port=8080&seq=1796003976160&int=1000&state=up'

PACKET = {
    # accepted
    'ours': OURS,
    'addr-v4': OURS + b'&addr=10.0.0.11',
    'addr-v6': OURS + b'&addr=fe80::1',
    'addr-bad': OURS + b'&addr=10.0.0.256',
    'addr-bracketed': OURS + b'&addr=[::1]',
    'join': OURS + b'&join=shop,api:https:8443&addr=10.0.0.11',
    'join-longest': OURS + b'&join=' + b','.join(
        b'%s:uwsgi:65535' % (c * 64) for c in (b'a', b'b', b'c', b'd')) + b'&addr=10.0.0.11',
    'join-bad': OURS + b'&join=shop,',
    'join-dup': OURS + b'&join=shop&join=api',
    'join-dup-name': OURS + b'&join=shop,SHOP:https',
    'join-five': OURS + b'&join=a,b,c,d,e',
    'stock': b'v=1&ready=75&busy=0',
    'stock-unknown-key': b'v=1&ready=75&busy=0&foo=bar',
    'drain': b'v=1&ready=3&busy=9&port=80&seq=7&int=250&state=drain',
    'stopping': b'v=1&ready=0&busy=0&port=18081&seq=18446744073709551615&int=1&state=stopping',
    'maxima': b'v=1&ready=2147483647&busy=2147483647&port=65535&seq=18446744073709551615'
              b'&int=3600000&state=up',
    'leading-zeros': b'v=0001&ready=00&busy=007&port=00080',
    'reordered': b'state=up&busy=1&ready=2&int=100&v=1',
    'empty-pairs': b'&&v=1&&ready=1&busy=0&',
    'key-32': b'v=1&ready=1&busy=0&' + b'k' * 32 + b'=x',
    'value-with-equals': b'v=1&ready=1&busy=0&x==a=b',
    'percent-in-unknown': b'v=1&ready=1&busy=0&note=%41%00',
    'max-length': b'v=1&ready=1&busy=0&pad=' + b'p' * (1400 - 23),
    # rejected
    'empty': b'',
    'too-long': b'v=1&ready=1&busy=0&pad=' + b'p' * (1401 - 23),
    'only-amp': b'&',
    'only-eq': b'=',
    'missing-busy': b'v=1&ready=5',
    'missing-v': b'ready=5&busy=0',
    'dup-ready': b'v=1&ready=99&busy=0&port=8080&ready=1',
    'dup-v': b'v=1&v=1&ready=1&busy=0',
    'dup-state': b'v=1&ready=1&busy=0&state=up&state=drain',
    'sign-minus': b'v=1&ready=-5&busy=0',
    'sign-plus': b'v=1&ready=+5&busy=0',
    'overflow-2-31': b'v=1&ready=2147483648&busy=0',
    'overflow-2-32': b'v=1&ready=4294967296&busy=0',
    'overflow-2-64': b'v=1&ready=1&busy=0&seq=18446744073709551616',
    'v-wraps-32': b'v=4294967297&ready=1&busy=0',
    'v-wraps-64': b'v=18446744073709551617&ready=1&busy=0',
    '21-digits': b'v=1&ready=000000000000000000001&busy=0',
    'hex': b'v=1&ready=0x10&busy=0',
    'exponent': b'v=1&ready=1e3&busy=0',
    'empty-value': b'v=1&ready=&busy=0',
    'nul': b'v=1&ready=9\x00&busy=0',
    'non-ascii': b'v=1&ready=1&busy=0&x=\xc3\xa9',
    'percent-number': b'v=1&ready=%39&busy=0',
    'space': b'v=1&ready= 1&busy=0',
    'crlf': b'v=1&ready=1&busy=0\r\n',
    'tab-key': b'v=1&ready=1&busy=0&a\tb=1',
    'v2': b'v=2&ready=1&busy=1',
    'v0': b'v=0&ready=1&busy=1',
    'port-0': b'v=1&ready=1&busy=0&port=0',
    'port-65536': b'v=1&ready=1&busy=0&port=65536',
    'int-0': b'v=1&ready=1&busy=0&int=0',
    'int-too-big': b'v=1&ready=1&busy=0&int=3600001',
    'state-upper': b'v=1&ready=1&busy=0&state=UP',
    'state-empty': b'v=1&ready=1&busy=0&state=',
    'key-33': b'v=1&ready=1&busy=0&' + b'k' * 33 + b'=x',
    'bare-key': b'v=1&ready=1&busy=0&flag',
    'empty-key': b'=1&v=1&ready=1&busy=0',
    'random': bytes((i * 73 + 41) % 256 for i in range(64)),
}

# --------------------------------------------------------------------------
# fuzz_join: the value of one join= (HeartbeatBalancer)

JOIN = {
    # accepted
    'one': b'shop',
    'scheme': b'api:https',
    'scheme-port': b'api:https:8443',
    'two': b'shop,api:https:8443',
    'four': b'shop,api:https:8443,back_end.v2-1:fcgi,x:ws:9000',
    'every-scheme': b'a:http:1,b:H2C:80,c:ajp:8009,d:uwsgi:65535',
    'case': b'Shop:HTTPS:00443',
    'longest': b','.join(b'%s:uwsgi:65535' % (c * 64) for c in (b'a', b'b', b'c', b'd')),
    'fnv-zero': b'7met1an',
    # refused
    'empty': b'',
    'empty-first': b',a',
    'empty-last': b'a,',
    'bad-char': b'sh/op',
    'name-65': b'n' * 65,
    'unknown-scheme': b'a:gopher',
    'empty-scheme': b'a::80',
    'port-0': b'a:http:0',
    'port-65536': b'a:http:65536',
    'port-6-digits': b'a:http:008080',
    'four-parts': b'a:http:80:1',
    'five': b'a,b,c,d,e',
    'dup': b'a,b,a',
    'dup-case': b'shop,SHOP',
    'balancer-url': b'balancer://shop',
    'too-long': b','.join(b'%s:uwsgi:65535' % (c * 64) for c in (b'a', b'b', b'c', b'd')) + b'x' * 8,
    'nul': b'shop\x00',
}

# --------------------------------------------------------------------------
# fuzz_storage: one HeartbeatStorage file per file

HEADER = b'# heartbeat table, written 2026-11-30T01:59:38Z\n'
LINE = (b'127.0.0.1 &ready=3&busy=0&lastseen=0&port=18081&seen=1796003978158256'
        b'&int=200&state=up&seq=1796003976160&portknown=1\n')

STORAGE = {
    'ours': HEADER + LINE,
    'ours-two': HEADER + LINE + b'10.0.0.12 &ready=7&busy=2&lastseen=1&port=80&seen=1796003977000000'
                                b'&state=drain&portknown=0\n',
    'stock': b'10.0.0.11 &ready=75&busy=0&lastseen=1&port=80\n'
             b'10.0.0.12 &ready=12&busy=3&lastseen=0&port=80\n',
    'stock-port': b'10.0.0.11 &ready=75&busy=0&lastseen=1&port=8080\n',
    'empty': b'',
    'only-comments': b'# one\n#two\n   # indented\n',
    'blank-lines': b'\n\n  \n\t\n' + LINE + b'\n',
    'crlf': LINE.replace(b'\n', b'\r\n') * 2,
    'no-final-newline': LINE.rstrip(b'\n'),
    'ipv6': b'2001:db8::1 &ready=1&busy=0&lastseen=0&port=443&portknown=1\n',
    'ipv6-brackets': b'[2001:db8::1] &ready=1&busy=0&lastseen=0&port=443\n',
    'ipv4-mapped': b'::ffff:10.0.0.11 &ready=1&busy=0&lastseen=2\n',
    'ipv6-longest': b'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 &ready=1&busy=0\n',
    'tabs': b'\t10.0.0.11\t&ready=1&busy=0&lastseen=0\t \n',
    'bad-ip': b'10.0.0.256 &ready=1&busy=0\nhost.example &ready=1&busy=0\n' + LINE,
    'ip-with-nul': b'10.0.0.1\x002 &ready=1&busy=0\n',
    'ip-too-long': b'1' * 49 + b' &ready=1&busy=0\n',
    'no-query': b'10.0.0.11\n10.0.0.11 \n',
    'missing-busy': b'10.0.0.11 &ready=1&lastseen=0\n',
    'dup-ready': b'10.0.0.11 &ready=1&busy=0&ready=2\n',
    'big-lastseen': b'10.0.0.11 &ready=1&busy=0&lastseen=18446744073709551615\n',
    'lastseen-edge': b'10.0.0.11 &ready=1&busy=0&lastseen=9223372036854\n',
    'seen-future': b'10.0.0.11 &ready=1&busy=0&seen=9223372036854775807\n',
    'seen-overflow': b'10.0.0.11 &ready=1&busy=0&seen=9223372036854775808\n',
    'portknown-2': b'10.0.0.11 &ready=1&busy=0&port=81&portknown=2\n',
    'port-80-unknown-mismatch': b'10.0.0.11 &ready=1&busy=0&port=8080&portknown=0\n',
    'bad-state': b'10.0.0.11 &ready=1&busy=0&state=down\n',
    'int-0': b'10.0.0.11 &ready=1&busy=0&int=0\n',
    'ready-overflow': b'10.0.0.11 &ready=4294967296&busy=0\n',
    'line-512': b'10.0.0.11 &ready=1&busy=0&x=' + b'y' * (512 - 28) + b'\n',
    'line-513': b'10.0.0.11 &ready=1&busy=0&x=' + b'y' * (513 - 28) + b'\n',
    'non-ascii': b'10.0.0.11 &ready=1&busy=0&x=\xff\n' + LINE,
    'mixed': HEADER + b'garbage\n' + LINE + b'\x00\x01\x02\n' + LINE.replace(b'127.0.0.1', b'::1'),
    'many': HEADER + b''.join(
        b'10.0.%d.%d &ready=%d&busy=%d&lastseen=%d&port=%d&portknown=1\n'
        % (i // 250, i % 250 + 1, i, i % 7, i % 3, 1000 + i) for i in range(100)),
}

# --------------------------------------------------------------------------
# fuzz_post: a configuration byte, then records [source][time][body] split
# by \n. Configuration: low 3 bits = capacity - 1, 0x08/0x10 = keys (1
# required, 2 migrate, 3 two keys), 0x20 = rate cap on UDP, 0x40 =
# HeartbeatAllow 127.0.0.0/8 2001:db8::/32 on UDP. Source: low 4
# bits = address, 0x10 = sign the body, 0x20 = with the wrong key material,
# 0x40 = with a stale timestamp. Time: low 6 bits = 100 ms steps, 0x40 = run
# expiry, 0x80 = came by UDP.

POST_T = 0x01        # 100 ms later, by POST
UDP_T = 0x81         # 100 ms later, by UDP
NOW_UDP = 0x80       # no time passes, by UDP
NOW_POST = 0x00      # no time passes, by POST
LATER = 0x3f         # 6.3 s later, by POST
EXPIRE = 0x40 | 0x3f  # 6.3 s later, then expiry
SIGN, ROGUE, STALE = 0x10, 0x20, 0x40
# Not a bit of the source byte: a signed record sent as a current sender
# does, naming its address (addr=), i.e. without 0x80 (which post() sets
# on every other source byte).
BOUND = 0x100
REQUIRED, MIGRATE, TWO_KEYS, RATE, ALLOW = 0x08, 0x10, 0x18, 0x20, 0x40


def post(cap, *records, cfg=0):
    out = bytes([(cap - 1) | cfg])
    for src, tm, body in records:
        # 0x80 means nothing to the target without 0x10; it keeps every
        # source byte clear of '\n', the record separator. With 0x10 (SIGN),
        # so never '\n', BOUND leaves it off: the target then appends addr=.
        rec = bytes([src & 0xff if src & BOUND else 0x80 | src, tm]) + body
        assert b'\n' not in rec, rec
        out += rec + b'\n'
    return out


def pkt(ready, busy=0, port=None, extra=b''):
    p = b'v=1&ready=%d&busy=%d' % (ready, busy)
    if port is not None:
        p += b'&port=%d' % port
    return p + extra


def padded(body, size):
    body += b'&pad='
    return body + b'x' * (size - len(body))


POST = {
    'one-post': post(4, (0, POST_T, OURS)),
    'one-udp': post(4, (0, UDP_T, OURS)),
    'update': post(4, (0, POST_T, pkt(5, port=80)), (0, POST_T, pkt(3, 1, port=80, extra=b'&state=drain'))),
    'two-ports': post(4, (0, POST_T, pkt(1, port=8080)), (0, POST_T, pkt(2, port=8081))),
    'stock-default-port': post(4, (2, UDP_T, b'v=1&ready=75&busy=0'), (2, UDP_T, pkt(1, port=80))),
    'v4-mapped-same-key': post(4, (0, UDP_T, pkt(1, port=9)), (12, UDP_T, pkt(2, port=9))),
    'ipv6': post(4, (8, POST_T, pkt(1, port=443)), (9, POST_T, pkt(2, port=443)),
                 (11, POST_T, pkt(3, port=443))),
    'full': post(2, (0, POST_T, pkt(1, port=1)), (1, POST_T, pkt(2, port=2)),
                 (2, POST_T, pkt(3, port=3))),
    'full-then-stale': post(2, (0, POST_T, pkt(1, port=1)), (1, POST_T, pkt(2, port=2)),
                            (1, LATER, pkt(2, port=2)), (1, LATER, pkt(2, port=2)),
                            (2, POST_T, pkt(3, port=3))),
    'expire': post(3, (0, POST_T, pkt(1, port=1)), (1, LATER, pkt(1, port=1)),
                   *[(1, LATER, pkt(1, port=1))] * 5, (1, EXPIRE, pkt(2, port=2))),
    'capacity-1': post(1, (0, POST_T, pkt(1, port=1)), (0, LATER, pkt(1, port=2)),
                       (0, LATER, pkt(1, port=2)), (3, POST_T, pkt(1, port=1))),
    'capacity-8': post(8, *[(i, POST_T, pkt(i, port=100 + i)) for i in range(12)]),
    'seq-int-kept': post(4, (0, POST_T, pkt(1, port=5, extra=b'&seq=10&int=200')),
                         (0, POST_T, pkt(2, port=5))),
    'malformed-mix': post(4, (0, POST_T, OURS), (0, POST_T, b''), (0, POST_T, b'v=2&ready=1&busy=1'),
                          (0, POST_T, b'v=1&ready=-1&busy=0'), (0, POST_T, b'v=1&ready=1'),
                          (0, POST_T, b'v=1&ready=1&busy=0&ready=9'), (0, POST_T, b'v=1&ready=\x00&busy=0'),
                          (0, POST_T, b'v=1&ready=4294967296&busy=0&port=8080'),
                          (0, POST_T, b'v=1&ready=%31&busy=0'), (0, POST_T, b'\xff\xfe\xfd')),
    'post-too-long': post(4, (0, POST_T, pkt(1, port=7, extra=b'&pad=' + b'x' * 1400))),
    'udp-too-long': post(4, (0, UDP_T, pkt(1, port=7, extra=b'&pad=' + b'x' * 1400))),
    'udp-exactly-1400': post(4, (0, UDP_T, padded(pkt(1, port=7), 1400))),
    'udp-1401': post(4, (0, UDP_T, padded(pkt(1, port=7), 1401))),
    'sixteen-rejects': post(4, *[(i, POST_T, b'v=1&ready=x&busy=0') for i in range(20)],
                            (0, POST_T, OURS)),
    'time-only': post(4, (0, LATER, b''), (0, EXPIRE, b'')),
    'all-sources': post(8, *[(i, UDP_T, pkt(i, port=80)) for i in range(16)]),
    'stopping': post(4, (0, POST_T, pkt(5, port=80)), (0, POST_T, pkt(0, port=80, extra=b'&state=stopping'))),
    'short-records': bytes([3]) + b'\x00\n\x01\n\n\n' + bytes([0, 1]) + OURS + b'\n',
    # authentication (the target signs the records marked SIGN)
    'auth-signed-updates': post(4, (SIGN, POST_T, pkt(5, port=80, extra=b'&seq=1')),
                                (SIGN, POST_T, pkt(4, port=80, extra=b'&seq=2')),
                                (SIGN, UDP_T, pkt(3, port=80, extra=b'&seq=3&int=100')),
                                cfg=REQUIRED),
    'auth-replay': post(4, (SIGN, POST_T, pkt(5, port=80, extra=b'&seq=7')),
                        (SIGN, POST_T, pkt(9, port=80, extra=b'&seq=7')),
                        (SIGN, POST_T, pkt(9, port=80, extra=b'&seq=6')), cfg=REQUIRED),
    'auth-refusals': post(4, (0, POST_T, pkt(5, port=80, extra=b'&seq=1')),
                          (SIGN | ROGUE, POST_T, pkt(5, port=80, extra=b'&seq=2')),
                          (SIGN | STALE, POST_T, pkt(5, port=80, extra=b'&seq=3')),
                          (SIGN, POST_T, pkt(5, port=80)),
                          (0, POST_T, pkt(5, port=80, extra=b'&ts=1&kid=k1&sig=' + b'0' * 64)),
                          (0, POST_T, pkt(5, port=80, extra=b'&sig=xyz')), cfg=REQUIRED),
    'auth-migrate-downgrade': post(4, (0, POST_T, pkt(5, port=80)),
                                   (SIGN, POST_T, pkt(4, port=80, extra=b'&seq=10')),
                                   (0, POST_T, pkt(3, port=80, extra=b'&seq=11')),
                                   (1, POST_T, pkt(2, port=80)), cfg=MIGRATE),
    'auth-rotation': post(4, (SIGN, POST_T, pkt(5, port=80, extra=b'&seq=1')),
                          (SIGN | ROGUE, POST_T, pkt(5, port=81, extra=b'&seq=1')),
                          cfg=TWO_KEYS),
    'auth-udp-truncated': post(4, (SIGN, UDP_T, padded(pkt(1, port=7, extra=b'&seq=1'), 1350)),
                               cfg=REQUIRED),
    # balancer announcements: kept from signed packets only, changed, dropped
    'auth-join': post(4, (SIGN | BOUND, POST_T, pkt(5, port=80, extra=b'&seq=1&join=shop')),
                      (SIGN | BOUND, POST_T, pkt(5, port=80, extra=b'&seq=2&join=shop')),
                      (SIGN | BOUND, POST_T,
                       pkt(5, port=80, extra=b'&seq=3&join=shop,api:https:8443')),
                      (SIGN | BOUND, POST_T, pkt(5, port=80, extra=b'&seq=4')),
                      (SIGN | BOUND, UDP_T, pkt(5, port=81, extra=b'&seq=5&join=shop')),
                      (1, POST_T, pkt(1, port=82, extra=b'&seq=1&join=shop')),
                      *[(1, LATER, pkt(1, port=82))] * 4, (1, EXPIRE, pkt(1, port=82)),
                      cfg=MIGRATE),
    # capacity 1: an announcing entry evicted by a silent one, which an
    # announcing one evicts, which another evicts
    'auth-join-evicted': post(1, (SIGN | BOUND, POST_T, pkt(5, port=80, extra=b'&seq=1&join=shop')),
                              (SIGN | BOUND | 1, LATER, pkt(5, port=80, extra=b'&seq=1')),
                              (SIGN | BOUND | 1, LATER, pkt(5, port=80, extra=b'&seq=2')),
                              (SIGN | BOUND, LATER, pkt(5, port=80, extra=b'&seq=2&join=a')),
                              (SIGN | BOUND, LATER, pkt(5, port=80, extra=b'&seq=3&join=a')),
                              (SIGN | BOUND | 1, LATER,
                               pkt(5, port=80, extra=b'&seq=3&join=b:h2:8443')),
                              (SIGN | BOUND | 1, LATER,
                               pkt(5, port=80, extra=b'&seq=4&join=b:h2:8443')),
                              cfg=REQUIRED),
    'auth-ts-in-body': post(4, (SIGN, POST_T, pkt(1, port=7, extra=b'&seq=1&ts=5')),
                            (SIGN, POST_T, pkt(1, port=7, extra=b'&seq=2&kid=k1')), cfg=REQUIRED),
    # the rate cap: 10/s, bursts of 20, UDP only
    'rate-flood': post(4, *[(0, NOW_UDP, pkt(1, port=80))] * 30, (0, 0x80 | 11, pkt(2, port=80)),
                       *[(0, NOW_UDP, pkt(3, port=80))] * 12, cfg=RATE),
    'rate-post-exempt': post(4, *[(0, NOW_POST, pkt(1, port=80))] * 30, cfg=RATE),
    'rate-two-forms': post(4, *[(0, NOW_UDP, pkt(1, port=80)), (12, NOW_UDP, pkt(1, port=80))] * 15,
                           cfg=RATE),
    # HeartbeatAllow: sources 0, 1, 9, 10, 12, 13 are in it; POSTs are not filtered
    'allow-filter': post(8, *[(i, UDP_T, pkt(i, port=80)) for i in range(16)],
                         (2, POST_T, pkt(2, port=80)), cfg=ALLOW),
    # refused by the filter before the rate cap sees them
    'allow-then-rate': post(4, *[(2, NOW_UDP, pkt(1, port=80))] * 25,
                            *[(0, NOW_UDP, pkt(1, port=80))] * 25, cfg=ALLOW | RATE),
}


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for name in os.listdir(d):
            if not name.startswith('regress-'):
                os.unlink(os.path.join(d, name))
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    print('%s: %d seeds' % (target, len(seeds)))


def main():
    assert len(PACKET['max-length']) == 1400 and len(PACKET['too-long']) == 1401
    assert len(padded(pkt(1, port=7), 1400)) == 1400
    write('fuzz_packet', PACKET)
    write('fuzz_storage', STORAGE)
    write('fuzz_post', POST)
    write('fuzz_join', JOIN)
    return 0


if __name__ == '__main__':
    sys.exit(main())
