"""bench/report.py: docs/PERFORMANCE.md from the results of bench/run.py.

One renderer per benchmark (render_request_path, render_micro,
render_ingest, render_freshness, render_quality, render_failure,
render_proxies, render_membership): each takes that
benchmark's results and the settings they were measured with, and returns
its rows of the summary table and its section of the report. write_report
puts them together under the head, then the failures, the caveats and the
notes that analysis_notes derives from the numbers.

bench/run.py measures and calls these; `bench/run.py --report-from JSON`
rewrites a report from saved results without measuring again. Python 3
standard library only.
"""

import re
import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return 'n/a'
    if isinstance(v, float) and v != v:
        return 'n/a'
    return ('%.' + str(digits) + 'f') % v


def verdict(ok):
    return 'met' if ok else '**missed**'


def render_request_path(rp, cfg):
    """The request-path benchmark (wrk through the proxy, ours and stock against byrequests).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    for key, label in (('ours_3', '3 members'), ('ours_64', '64 members'),
                       ('ours_3_with_1000', '3 members, 1,000 other senders'),
                       ('ours_3_header', '3 members, origins with HeartbeatResponseHeader on')):
        if key not in rp:
            continue
        ratio = rp[key]['ratio']
        w('| request path, %s | heartbeat / byrequests >= 0.97 | %s | %s |'
          % (label, fmt(ratio, 3), verdict(ratio is not None and ratio >= 0.97)))
    oh = rp.get('origin_header')
    if oh:
        w('| request path: the origin\'s own throughput, HeartbeatResponseHeader on / off |'
          ' near 1 (no visible cost; >= 0.97) | %s (%s vs %s requests/s, served directly; CPU'
          ' per request on the origin %s vs %s us) | %s |'
          % (fmt(oh['ratio'], 3), fmt(oh['variant_median'], 0), fmt(oh['baseline_median'], 0),
             fmt(oh.get('variant_cpu_us_median'), 1), fmt(oh.get('baseline_cpu_us_median'), 1),
             verdict(oh['ratio'] is not None and oh['ratio'] >= 0.97)))

    w = section.append
    w('## 1. Request-path cost')
    w('')
    w('Three origin httpds (event MPM) serve a 128-byte static file on 64 loopback'
      ' addresses 127.0.1.1-64 (one port); each address is a `BalancerMember`. One proxy'
      ' process holds four balancers over the same members: `hb3`/`br3` (3 members,'
      ' `lbmethod=heartbeat`/`byrequests`) and `hb64`/`br64`, so that both methods are'
      ' measured in the same process under the same conditions; bench/udpgen feeds the'
      ' members\' heartbeats (each twice a second, from its own address). A second proxy'
      ' loads Debian\'s stock `mod_lbmethod_heartbeat` in file mode, reading a file the'
      ' benchmark wrote (stock re-reads and parses it on every request), again beside'
      ' byrequests balancers. Keep-alive everywhere.%s'
      % (' A fourth origin httpd, the same with our sender and `HeartbeatResponseHeader on`'
         ' (issue 17), serves three more members, 127.0.1.65-67 (balancers `hb3hdr` and'
         ' `br3hdr` in our proxy, fed by udpgen as the others; its own heartbeats go to a'
         ' port nothing listens on); two more, the same with the header on and off, serve'
         ' 127.0.1.68 and 69, not members: wrk against each of these two directly'
         ' (alternating) is the origin\'s own cost of the header. The proxy removes the'
         ' header from every response and `hb3hdr` takes it as a fresher heartbeat of its'
         ' member.'
         if 'ours_3_header' in rp else ''))
    w('')
    w('    ' + rp['wrk_command'])
    w('')
    w('Requests per second, each round runs the baseline (byrequests; for the origin alone,'
      ' the header off) then the variant; the ratio is the median of the per-round ratios.')
    w('')
    w('| comparison | baseline (runs) | variant (runs) | median baseline | median variant'
      ' | ratio | errors |')
    w('|---|---|---|---|---|---|---|')
    for key, label in (('ours_3', 'ours, 3 members'), ('ours_64', 'ours, 64 members'),
                       ('ours_3_header', 'ours, 3 members, origins with the header on'),
                       ('origin_header', 'the origin alone, header off / on (directly)'),
                       ('ours_3_with_1000', 'ours, 3 members + 1,000 senders in table'),
                       ('stock_3', 'stock file mode, 3 members'),
                       ('stock_64', 'stock file mode, 64 members')):
        if key not in rp:
            continue
        s = rp[key]
        w('| %s | %s | %s | %s | %s | %s | %d / %d |'
          % (label, ' '.join(fmt(x, 0) for x in s['baseline_rps']),
             ' '.join(fmt(x, 0) for x in s['variant_rps']), fmt(s['baseline_median'], 0),
             fmt(s['variant_median'], 0), fmt(s['ratio'], 3), s['baseline_errors'],
             s['variant_errors']))
    w('')
    w('The table held %d entries during the last ours row (monitor counters at its end:'
      ' %s).' % (rp['table_entries'], ', '.join(
          '%s %s' % (k, v) for k, v in sorted(rp['monitor_counters'].items()))))
    w('')
    if oh and oh.get('baseline_cpu_us'):
        w('What the origin spent per request in those direct runs (CPU time of all its'
          ' processes, `/proc/<pid>/task/*/schedstat`, over the requests wrk counted; us):'
          ' header off %s (median %s), on %s (median %s).'
          % (' '.join(fmt(x, 1) for x in oh['baseline_cpu_us']),
             fmt(oh['baseline_cpu_us_median'], 1),
             ' '.join(fmt(x, 1) for x in oh['variant_cpu_us']),
             fmt(oh['variant_cpu_us_median'], 1)))
        w('')
    hm = rp.get('header_members')
    if hm:
        w('Load reports `hb3hdr` took by the end of its runs (status page, per member): %s.'
          % ', '.join('%s %d taken, %d ignored' % (m.split('//')[-1], e['load_reports'],
                                                   e['load_ignored'])
                      for m, e in sorted(hm.items())))
        w('')
    return rows, section


def render_micro(micro, cfg):
    """The pick and table micro-benchmark (bench/pick_bench).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    picks = {x['members']: x for x in micro['pick']}
    w('| pick micro-benchmark | linear in members, small constant | %s ns/member'
      ' (4: %s ns, 64: %s ns, 1,024: %s ns per pick) | %s |'
      % (fmt(picks[1024]['most_ns_per_member'], 1), fmt(picks[4]['most_ns'], 0),
         fmt(picks[64]['most_ns'], 0), fmt(picks[1024]['most_ns'], 0),
         verdict(micro['most_ns_per_member_spread'] < 2.0)))

    w = section.append
    w('### Pick micro-benchmark (bench/pick_bench.c)')
    w('')
    w('Linked against the modules\' own core library (`libhbcore`). Median of 7'
      ' repetitions; nanoseconds.')
    w('')
    w('| members | `lbhb_pick_most` | per member | `lbhb_pick_p2c` | `lbhb_pick_weighted`'
      ' | `hm_table_find` (one lookup) | lookups + pick_most | per member |')
    w('|---|---|---|---|---|---|---|---|')
    tables = {x['members']: x for x in micro['table']}
    for n in sorted(picks):
        pk, tb = picks[n], tables[n]
        w('| %d | %s | %s | %s | %s | %s | %s | %s |'
          % (n, fmt(pk['most_ns'], 1), fmt(pk['most_ns_per_member'], 2),
             fmt(pk['p2c_ns'], 1), fmt(pk['weighted_ns'], 1), fmt(tb['find_ns'], 1),
             fmt(tb['lookup_and_pick_ns'], 0), fmt(tb['lookup_and_pick_ns_per_member'], 1)))
    w('')
    w('Time per member of `lbhb_pick_most` varies by a factor %s between 4 and 1,024'
      ' members: the growth is linear; a lookup costs the same whatever the table holds'
      ' (hash index). What the monitor spends applying one packet once received'
      ' (`hb_packet_parse` + `hm_table_update`): %s; for scale, one `getpid()` system'
      ' call costs %s ns on this machine (the table\'s writer lock caches the pid).'
      % (fmt(micro['most_ns_per_member_spread'], 2), ', '.join(
          '%s ns with %d senders' % (fmt(a['parse_and_update_ns'], 0), a['senders'])
          for a in micro['apply']), fmt(micro.get('getpid_ns'), 0)))
    w('')
    return rows, section


def render_ingest(ing, cfg):
    """The monitor-ingest benchmark (udpgen at fixed rates to ours and stock).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    top = max(cfg.ingest_rates)
    cell = {(c['monitor'], c['rate'], c['senders']): c for c in ing['cells']}
    lost = [cell[('ours', top, s)]['max_lost'] for s in (10, 10000)]
    w('| ingest: loss at %dk/s | no loss | lost (worst run) %s of %d with 10 senders,'
      ' %s with 10,000 | %s |' % (top // 1000, lost[0], top * cfg.ingest_seconds, lost[1],
                                   verdict(all(x == 0 for x in lost))))
    cpus = [cell[('ours', rate, s)]['median_cpu_net_us_per_packet']
            for rate in cfg.ingest_rates for s in (10, 10000)]
    gross = [cell[('ours', rate, s)]['median_cpu_us_per_packet']
             for rate in cfg.ingest_rates for s in (10, 10000)]
    worst = max(c for c in cpus if c is not None)
    best = min(c for c in cpus if c is not None)
    w('| ingest: monitor CPU per packet | <= 1 us | %s to %s us (median per cell, net of'
      ' idle housekeeping; with it: %s to %s us) | %s |'
      % (fmt(best, 2), fmt(worst, 2), fmt(min(gross), 2), fmt(max(gross), 2),
         verdict(worst <= 1.0)))
    spreads = []
    for rate in cfg.ingest_rates:
        c10 = cell[('ours', rate, 10)]['median_cpu_net_us_per_packet']
        c10k = cell[('ours', rate, 10000)]['median_cpu_net_us_per_packet']
        if c10 and c10k:
            spreads.append(abs(c10k - c10) / c10 * 100)
    pl = ing.get('placement')
    if pl and pl.get('median_same_10000'):
        # Judged with placement fixed: unpinned, the scheduler puts the
        # receiver on the sender's CPU in some runs and not in others,
        # which moves CPU per packet by 40-70% whatever the senders.
        fixed = [abs(pl['median_%s_10000' % w] - pl['median_' + w]) / pl['median_' + w] * 100
                 for w in ('same', 'other')]
        w('| ingest: CPU/packet, 10 vs 10,000 senders | within 20%% | %s%% on the sender\'s'
          ' CPU, %s%% on the other (receiver pinned, %dk/s); unpinned, where the scheduler'
          ' also moves it: %s | %s |'
          % (fmt(fixed[0], 0), fmt(fixed[1], 0), pl['rate'] // 1000,
             ', '.join(fmt(s, 0) + '%' for s in spreads), verdict(max(fixed) <= 20)))
    else:
        w('| ingest: CPU/packet, 10 vs 10,000 senders | within 20%% | differs by %s%% at'
          ' most (%s) | %s |' % (fmt(max(spreads), 0),
                                 ', '.join(fmt(s, 0) + '%' for s in spreads),
                                 verdict(max(spreads) <= 20)))

    mt = ing.get('metrics')
    if mt:
        w('| metrics: one `?prometheus` scrape, %s origins in the table | measured; the'
          ' receiver keeps up while scraped (no loss at %dk/s) | %s ms to the last byte'
          ' (%s MB, %s lines), %s ms of monitor CPU; lost %s with back-to-back scrapes, %s'
          ' without | %s |'
          % ('{:,}'.format(mt['entries']), mt['rate'] // 1000,
             fmt(mt['median_scrape_s'] * 1000, 0), fmt(mt['bytes'] / 1e6, 1),
             '{:,}'.format(mt['lines']), fmt(mt['cpu_s_per_scrape'] * 1000, 0),
             mt['max_lost_with'], mt['max_lost_without'],
             verdict(mt['max_lost_with'] == 0)))

    w = section.append
    top = max(cfg.ingest_rates)
    w('## 2. Monitor ingest')
    w('')
    w('bench/udpgen sends valid heartbeats (`v=1&ready=..&busy=..&port=..&seq=..&int=1000'
      '&state=up`) at a fixed rate, round-robin over 10 or 10,000 senders, each its own'
      ' source address (set per packet with IP_PKTINFO, one socket, `sendmmsg` batches).'
      ' Each run sends rate x %d s packets, at least %d, then waits until the socket\'s'
      ' queue is empty.'
      ' Applied = the monitor\'s `accepted` counter (ours) or sent minus the socket\'s'
      ' kernel drop count (stock, which has no counter; it applies every packet it'
      ' receives). CPU = run time of every process of the monitor\'s httpd over the run'
      ' (`/proc/<pid>/task/*/schedstat`, nanoseconds; the last column uses'
      ' `/proc/<pid>/stat` utime+stime instead, in 10 ms ticks) divided by the packets'
      ' applied. That includes what the monitor spends whether packets come or not'
      ' (idle housekeeping, measured over 3 s before the runs: %s; for stock most of it'
      ' is mod_watchdog\'s thread, which wakes 10 times a second); "net" subtracts that'
      ' rate times the run\'s length, and is what the targets are judged on.'
      % (cfg.ingest_seconds, getattr(cfg, 'ingest_min_packets', 0),
         ', '.join('%s %s ms/s' % (k, fmt(v * 1000, 1))
                                       for k, v in sorted(ing['idle_cpu_per_s'].items()))))
    w('')
    hp = ing.get('huge_page_kb', {})
    w('- **ours**: `HeartbeatListen 127.0.0.1:PORT`, senders 127.2.0.1 onwards,'
      ' `HeartbeatMaxServers 12000`, `HeartbeatRateLimit 0` (see below); 10 and 10,000'
      ' senders alternate. %s'
      % ('The benchmark reserved two huge pages for the run (`vm.nr_hugepages` + 2,'
         ' restored afterwards), as docs/directives.md recommends for large tables; the'
         ' table is in %s kB pages (`huge_page_kb` on the status page).'
         % hp.get('ours') if ing.get('huge_pages_reserved') else
         '**No huge pages could be reserved** (not root?): the table is in normal pages.'))
    w('- **ours-4k**: the same with `HeartbeatHugePages off` (huge_page_kb %s), as on a'
      ' machine with no huge pages reserved (the default), 10,000 senders, alternating'
      ' with ours.' % hp.get('ours-4k'))
    w('- **ours-multicast** and **stock-multicast**: the stock monitor only joins a'
      ' multicast group, so both run in a network namespace the benchmark creates, on'
      ' groups of their own, alternating; 198.19.0.0/16 is made local there so that the'
      ' senders have addresses (the stock monitor keys by address only). Stock in'
      ' file mode (`HeartbeatMaxServers 0`), the only mode in which the stock lbmethod'
      ' finds its data. Multicast loopback costs the sender more: on this machine udpgen'
      ' may not reach the top rate there (see "achieved").')
    w('')
    w('    ' + ing['udpgen_unicast'])
    w('    ' + ing['udpgen_multicast'])
    w('')
    w('| monitor | rate/s | senders | sent | achieved rate | applied (runs) |'
      ' lost, median (worst) | CPU us/packet (runs) | median | median from stat |'
      ' median net |')
    w('|---|---|---|---|---|---|---|---|---|---|---|')
    for c in ing['cells']:
        w('| %s | %d | %d | %d | %s | %s | %s (%s) | %s | %s | %s | %s |'
          % (c['monitor'], c['rate'], c['senders'], c['median_sent'],
             fmt(c['median_achieved_rate'], 0),
             ' '.join(str(x['applied']) for x in c['runs']),
             fmt(c['median_lost'], 0), c['max_lost'],
             ' '.join(fmt(x['cpu_us_per_packet'], 2) for x in c['runs']),
             fmt(c['median_cpu_us_per_packet'], 2),
             fmt(c['median_cpu_stat_us_per_packet'], 2),
             fmt(c['median_cpu_net_us_per_packet'], 2)))
    w('')
    pl = ing.get('placement')
    if pl:
        w('Where the receiver runs matters more than anything in it: with udpgen pinned to'
          ' CPU 0 (`taskset -c 0`) and the `hm-receiver` thread pinned to CPU 0 or CPU 1'
          ' (`taskset -pc`), alternating, %d/s from %d senders: %s us per packet on the'
          ' sender\'s CPU (runs %s), %s us on the other (runs %s). The datagrams are'
          ' written by the sender\'s CPU; read from the other one, every copy misses the'
          ' cache. Unpinned, as in the table above, the scheduler decides run by run;'
          ' being woken by a datagram tends to move the receiver to the sender\'s CPU,'
          ' which is why it polls again after a read that comes up empty.'
          % (pl['rate'], pl['senders'], fmt(pl['median_same'], 2),
             ' '.join(fmt(r['cpu_us_per_packet'], 2) for r in pl['same']),
             fmt(pl['median_other'], 2),
             ' '.join(fmt(r['cpu_us_per_packet'], 2) for r in pl['other'])))
        if pl.get('median_same_10000'):
            w('')
            w('The same with 10,000 senders, in the same rounds: %s us on the sender\'s'
              ' CPU (runs %s), %s us on the other (runs %s). With placement fixed, this'
              ' is what the number of senders costs, and what the summary judges the'
              ' 10 vs 10,000 target on.'
              % (fmt(pl['median_same_10000'], 2),
                 ' '.join(fmt(r['cpu_us_per_packet'], 2) for r in pl['same_10000']),
                 fmt(pl['median_other_10000'], 2),
                 ' '.join(fmt(r['cpu_us_per_packet'], 2) for r in pl['other_10000'])))
        w('')
    rl = ing.get('ratelimited')
    if rl:
        w('With the default `HeartbeatRateLimit 100` (per address, bursts of 200), 10'
          ' senders at %d/s: median %s packets applied and %s dropped by the limit per'
          ' run of %d, at %s us of monitor CPU per packet received. The limit is meant'
          ' for this: a few addresses flooding; the table above turns it off to measure'
          ' the receive path itself.'
          % (rl['rate'], fmt(rl['median_accepted'], 0), fmt(rl['median_ratelimited'], 0),
             rl['rate'] * cfg.ingest_seconds, fmt(rl['median_cpu_us_per_packet_sent'], 2)))
        w('')
    mt = ing.get('metrics')
    if mt:
        w('### Prometheus scrapes (docs/monitoring.md)')
        w('')
        w('The **ours** monitor with %s origins in its table: `GET /hb-status?prometheus`,'
          ' %d times one after another from one client: %s ms median to the last byte'
          ' (runs %s ms), %s bytes in %s lines%s, %s ms of the monitor\'s CPU per scrape'
          ' (net of idle housekeeping). Then %d/s from 10,000 senders for %d s,'
          ' alternately without and with a client scraping back to back (%s scrapes per'
          ' run, %s ms median each under that load): lost %s without, %s with (worst'
          ' run); kernel drops %s and %s. A scrape copies the table entry by entry under'
          ' the seqlocks, never holding the writer lock, and writes the text out through'
          ' a 64 kB buffer.'
          % ('{:,}'.format(mt['entries']), len(mt['scrape_s']),
             fmt(mt['median_scrape_s'] * 1000, 1),
             ' '.join(fmt(x * 1000, 0) for x in mt['scrape_s']), '{:,}'.format(mt['bytes']),
             '{:,}'.format(mt['lines']),
             {True: ', `promtool check metrics` clean', False: ', **promtool check metrics'
              ' failed**'}.get(mt['promtool_ok'], ''),
             fmt(mt['cpu_s_per_scrape'] * 1000, 1), mt['rate'], cfg.ingest_seconds,
             ' '.join(str(x) for x in mt['scrapes_during']),
             fmt(mt['median_scrape_s_under_load'] * 1000, 0), mt['max_lost_without'],
             mt['max_lost_with'], mt['max_drops_without'], mt['max_drops_with']))
        w('')
    hi, lo = ing.get('perf'), ing.get('perf_low')
    if hi and hi.get('symbols') and lo and lo.get('symbols'):
        w('Where our monitor\'s time goes (`perf record -e cpu-clock -g` on its processes'
          ' while udpgen sends from 10,000 senders; self time, symbols over 1%; on this VM'
          ' the software clock cannot interrupt code that runs with interrupts disabled,'
          ' so that time, system-call entry and exit and softirq work, lands on'
          ' `pvm_irq_enable`):')
        w('')
        w('| %d/s: share | object | symbol | %d/s: share | object | symbol |'
          % (hi['rate'], lo['rate']))
        w('|---|---|---|---|---|---|')
        n = max(len(hi['symbols']), len(lo['symbols']))
        for i in range(min(n, 18)):
            cells = []
            for prof in (hi, lo):
                if i < len(prof['symbols']):
                    row = prof['symbols'][i]
                    cells += ['%s%%' % fmt(row['percent'], 1), row['dso'], row['symbol']]
                else:
                    cells += ['', '', '']
            w('| ' + ' | '.join(cells) + ' |')
        w('')
        for prof in (hi, lo):
            w('By object at %d/s: %s.' % (prof['rate'], ', '.join(
                '%s %s%%' % (d['dso'], fmt(d['percent'], 1))
                for d in prof.get('dsos', [])[:6])))
            w('')
    elif hi:
        w('perf did not work here: %s' % hi.get('error'))
        w('')
    return rows, section


def render_freshness(fr, cfg):
    """The freshness benchmark (time until a fully busy origin stops being picked).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    med = fr['ours']['median']
    w('| freshness | median <= interval (1 s) + 50 ms | ours %s s (max %s), stock %s s'
      ' (max %s) | %s |' % (fmt(med, 3), fmt(fr['ours']['max'], 3),
                            fmt(fr['stock']['median'], 3), fmt(fr['stock']['max'], 3),
                            verdict(med is not None and med <= 1.05)))
    fh = fr.get('ours-header')
    if fh:
        w('| freshness, HeartbeatResponseHeader on | median <= 0.2 s | ours with the header %s s'
          ' (max %s, %d timed out; without it %s s) | %s |'
          % (fmt(fh['median'], 3), fmt(fh['max'], 3), fh['timed_out'], fmt(med, 3),
             verdict(fh['median'] is not None and fh['median'] <= 0.2 and not fh['timed_out'])))

    w = section.append
    w('## 3. Freshness')
    w('')
    w('Namespaces a, b (origins) and proxy. Origin a has 8 workers, b 4; both send'
      ' heartbeats every second (ours: `HeartbeatInterval 1s`, the default; stock: fixed'
      ' 1 s). Ours and the stock trio run side by side on separate multicast groups'
      ' (ours: origins on'
      ' port 8080, proxy on 80; stock: origins on 80, proxy on 8080 in file mode). A'
      ' prober in the proxy namespace sends a request through the proxy every %d ms, each'
      ' on its own connection. A trial waits until a is being picked, waits a random'
      ' 0-1 s (phase against the senders), then makes a fully busy: 8 connections to it'
      ' each send half a request and hold a worker (its scoreboard shows 8 busy, 0'
      ' ready). Freshness = from then to the first probe sent after the last one that'
      ' still went to a (requests to a hang until the hold is released, so each is'
      ' attributed when it completes). Ours uses `HeartbeatPickMode weighted` here,'
      ' like stock\'s random choice weighted by ready: `most` and `p2c` would also react'
      ' to their own requests stuck at a (in-flight correction) before any heartbeat'
      ' arrives, which measures the prober, not the data path.%s'
      % (fr['probe_interval_s'] * 1000, ' **ours-header** is ours again, with'
         ' `HeartbeatResponseHeader on` at both origins (a second pair on port 8081, balancer'
         ' `apph` in the same proxy): every answer of a carries its load; "reports" below'
         ' counts those the proxy took from a from the moment it was made busy to the end of'
         ' the trial. A trial releases a once every probe has been routed (answered, or'
         ' unanswered for 0.3 s: stuck at a), since the first answers after the release'
         ' tell a proxy using the header that a is free again.' if 'ours-header' in fr else ''))
    w('')
    suites = [n for n in ('ours', 'ours-header', 'stock') if n in fr]
    for name in suites:
        seen = sorted({t.get('busy_origin_seen_as') for t in fr[name]['trials']
                       if t.get('busy_origin_seen_as')})
        if seen:
            w('- %s\'s data for the busy origin once detected: %s' % (
                name, '; '.join('`%s`' % x for x in seen[:4])))
    w('')
    w('| trio | trials (s) | median | min | max | timed out | reports from a (trials) |')
    w('|---|---|---|---|---|---|---|')
    for name in suites:
        s = fr[name]
        reports = [t.get('reports_from_busy_origin') for t in s['trials']]
        w('| %s | %s | %s | %s | %s | %d | %s |' % (
            name, ' '.join(fmt(x, 3) for x in s['seconds']), fmt(s['median'], 3),
            fmt(s['min'], 3), fmt(s['max'], 3), s['timed_out'],
            ' '.join('-' if x is None else str(x) for x in reports)
            if any(x is not None for x in reports) else '-'))
    w('')
    return rows, section


def render_quality(q, cfg):
    """The balancing-quality benchmark (open-loop load on origins of capacity 1:4).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    v = q['variants']
    baselines = ('stock', 'byrequests', 'bybusyness')

    def key(n):
        return (v[n]['errors_total'] > 0, v[n]['p99_ms'] if v[n]['p99_ms'] is not None
                else 1e12)
    best_base = min(baselines, key=key)
    ok = (v['most']['errors_total'] == 0
          and all(key('most') <= key(n) for n in baselines))
    w('| balancing quality, event-MPM origins | ours lowest p99, no errors | heartbeat most'
      ' p99 %s ms, %d errors (weighted %s ms/%d, p2c %s ms/%d); best baseline %s %s ms,'
      ' %d errors | %s |'
      % (fmt(v['most']['p99_ms'], 0), v['most']['errors_total'],
         fmt(v['weighted']['p99_ms'], 0), v['weighted']['errors_total'],
         fmt(v['p2c']['p99_ms'], 0), v['p2c']['errors_total'],
         best_base, fmt(v[best_base]['p99_ms'], 0), v[best_base]['errors_total'],
         verdict(ok)))
    if 'most-prefork' in v:
        mp, bp = v['most-prefork'], v['bybusyness-prefork']
        okp = mp['errors_total'] == 0 and key('most-prefork') <= key('bybusyness-prefork')
        w('| balancing quality, prefork origins | (same) | heartbeat most p99 %s ms, %d'
          ' errors; bybusyness %s ms, %d errors | %s |'
          % (fmt(mp['p99_ms'], 0), mp['errors_total'], fmt(bp['p99_ms'], 0),
             bp['errors_total'], verdict(okp)))

    w = section.append
    w('## 4. Balancing quality')
    w('')
    w('Namespaces a, b and proxy. Origin a has %d workers, b %d (1:4); `/svc` is a'
      ' mod_lua handler that holds its worker for 20 ms (`r.usleep(20000)`; Debian\'s'
      ' mod_lua has no `r:sleep`) and names the origin in `X-Origin`. Capacity %d'
      ' requests/s; bench/openloop offers %d/s (%d%%) as Poisson arrivals fixed by a'
      ' per-round seed (every variant of a round gets the same schedule), %d s per run,'
      ' one connection per request; latency runs from the scheduled start (no'
      ' coordinated omission). Members use `disablereuse=on retry=1`, `ProxyPass ...'
      ' timeout=5`; the client gives up after 6 s. Our proxy holds one balancer per'
      ' method over the same origins (ours: origins on port 8080 with our sender, default'
      ' `HeartbeatInterval 1s`); the stock trio (stock sender, monitor in file mode,'
      ' lbmethod) runs beside it. The origins run the event MPM (one process, a thread'
      ' per worker), except the two `-prefork` rows: the same capacities as prefork'
      ' processes (one per worker). Before each run the origins are idle and have'
      ' reported so. Errors = timeouts, connection failures and non-2xx answers (by code'
      ' below); latency percentiles are over the successful requests only.'
      % (q['workers'][0], q['workers'][1], q['capacity_rps'], q['offered_rps'],
         round(100 * q['offered_rps'] / q['capacity_rps']), q['seconds']))
    w('')
    w('    ' + q['openloop_command'])
    w('')
    w('| method | p50 ms (runs) | p99 ms (runs) | median p50 | median p99 | median p99.9 |'
      ' errors (runs) | 5xx codes | share to a (1/5 ideal) |')
    w('|---|---|---|---|---|---|---|---|---|')
    for name in ('most', 'weighted', 'p2c', 'stock', 'byrequests', 'bybusyness',
                 'most-prefork', 'bybusyness-prefork'):
        if name not in q['variants']:
            continue
        s = q['variants'][name]
        label = 'heartbeat ' + name if name.split('-')[0] in ('most', 'weighted', 'p2c') \
            else name
        w('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            label, ' '.join(fmt(x['p50_ms'], 0) for x in s['runs']),
            ' '.join(fmt(x['p99_ms'], 0) for x in s['runs']), fmt(s['p50_ms'], 1),
            fmt(s['p99_ms'], 1), fmt(s['p999_ms'], 0),
            ' '.join(str(e) for e in s['errors_per_run']),
            ', '.join('%s: %d' % kv for kv in sorted(s['codes_5xx'].items())) or '-',
            fmt(s['share_a'], 3)))
    w('')
    w('Our proxy\'s error log over these runs: %d `LB0304` lines ("no member of ... has'
      ' fresh heartbeat data; refusing with 503", rate-limited to one a minute per'
      ' child) and %d `AH01170` ("All workers are in error state", what mod_proxy_balancer'
      ' logs for each request the method returns no member for).'
      % (q['lb0304_lines'], q['ah01170_lines']))
    w('')
    return rows, section


def sum_counts(dicts):
    out = {}
    for d in dicts:
        for k, n in d.items():
            out[k] = out.get(k, 0) + n
    return out


def render_failure(f, cfg):
    """The failure benchmark (cold start, black hole, slow start; issue 16).
    -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    cold = f['cold']

    def cold_ok(runs):
        return all(r['first']['failed'] == 0 and r['ratio'] is not None and r['ratio'] <= 1.5
                   for r in runs)

    def cold_cell(method):
        runs = cold[method]
        return '%s: failed %s, ratio %s' % (
            method, ' '.join(str(r['first']['failed']) for r in runs),
            ' '.join(fmt(r['ratio'], 2) for r in runs))
    w('| failure: cold start (full proxy start, %d clients connecting) | 0 failed in the'
      ' first %d s and first-%d-s p99 <= 1.5x steady p99, every start | %s (bybusyness,'
      ' reference: %s) | %s |'
      % (f['clients'], f['cold_first_s'], f['cold_first_s'], cold_cell('heartbeat'),
         cold_cell('bybusyness').split(': ', 1)[1], verdict(cold_ok(cold['heartbeat']))))
    first_runs = cold.get('first')
    if first_runs:
        w('| failure: first start of a new proxy (no saved reports), unicast origins | 0 failed'
          ' in the first %d s and first-%d-s p99 <= 1.5x steady p99, every start | %s | %s |'
          % (f['cold_first_s'], f['cold_first_s'],
             cold_cell('first').replace('first: ', 'heartbeat: ', 1),
             verdict(cold_ok(first_runs))))
    else:
        w('| failure: first start of a new proxy (no saved reports), unicast origins | 0 failed'
          ' in the first %d s and first-%d-s p99 <= 1.5x steady p99, every start | not'
          ' measured in this run | - |' % (f['cold_first_s'], f['cold_first_s']))
    bh = f['black_hole']
    hb = bh['heartbeat']
    w('| failure: black hole (1 of 3 origins answers 503 at once) | heartbeat <= 5%% failed,'
      ' healthy p99 unchanged (with / without <= 1.2) | heartbeat %s%% failed, p99 ratio %s;'
      ' byrequests %s%%, bybusyness %s%% | %s |'
      % (fmt(hb['median_failed_pct'], 1), fmt(hb['p99_ratio'], 2),
         fmt(bh['byrequests']['median_failed_pct'], 1),
         fmt(bh['bybusyness']['median_failed_pct'], 1),
         verdict(hb['median_failed_pct'] is not None and hb['median_failed_pct'] <= 5
                 and hb['p99_ratio'] is not None and hb['p99_ratio'] <= 1.2)))
    ss = f['slow_start']
    cells = ['%s: p99 %s ms, %s failed, share back in %s s'
             % (slow_start_label(s), fmt(v['p99_ms'], 0), '/'.join(str(x) for x in v['failed']),
                fmt(v['settle_s'], 1)) for s, v in sorted(ss.items(), key=lambda kv: int(kv[0]))]
    cells += ['%ds: not measured (directive missing)' % s
              for s in f.get('slow_start_missing', [])]
    w('| failure: slow start (32-worker origin restarted under load) | measured, no target'
      ' yet | %s | - |' % '; '.join(cells))

    w = section.append
    w('## 5. Failure')
    w('')
    w('The bars of issue 16, on real processes (this benchmark ran on %s, load average %s'
      ' at its start, %s at its end). Namespaces a, b, c and proxy. Origin a'
      ' has %d workers, b %d; `/svc` is the mod_lua handler of section 4 holding its worker'
      ' %d ms (capacity %d requests/s together); both run our sender (`HeartbeatInterval'
      ' 1s`). Origin c, the black hole, has %d workers, our sender, and `Redirect 503 /svc`'
      ' (mod_alias): every request is answered 503 at once, so its workers are always free.'
      ' One proxy holds a balancer per method over a and b and another over a, b and c'
      ' (members `disablereuse=on retry=1`, `ProxyPass ... timeout=5`), each in the default'
      ' configuration otherwise: no `failonstatus`, `HeartbeatWarmUp` and `HeartbeatEject`'
      ' as they come. Closed-loop load below means %d clients in the proxy\'s namespace,'
      ' each sending its next request as soon as the previous one is answered, one'
      ' connection per request; failed = a non-2xx answer, a reset, a timeout or a refused'
      ' connection; latencies are of the successful requests.'
      % (f['date'], f['load_start'], f['load_end'], f['workers'][0], f['workers'][1],
         f['service_ms'], round(sum(f['workers']) * 1000 / f['service_ms']), f['workers'][1],
         f['clients']))
    w('')
    w('### Cold start')
    w('')
    w('The closed-loop clients are already connecting (a refused connection is tried again'
      ' after 50 ms) when the proxy is started from scratch, not by a graceful restart: its'
      ' table in shared memory starts empty and fills as the origins\' reports arrive. The'
      ' windows count from the moment the start returned (the proxy accepted a'
      ' connection): the first %d s, and the steady state %g-%g s after. heartbeat and'
      ' bybusyness alternate, %d starts each; the proxy stops (graceful stop) after each.'
      ' "Slow until" is when the last request of the first window slower than 1.5 times'
      ' the steady p99 started (negative: before the start returned).'
      % (f['cold_first_s'], f['cold_steady_s'][0], f['cold_steady_s'][1],
         len(cold['heartbeat'])))
    w('')
    if first_runs:
        w('')
        w('The first start of a new proxy (rows "heartbeat, first start"): the same, except'
          ' that what the monitor saved at the previous stop (`heartbeat/hb.dat` in'
          ' `DefaultRuntimeDir`) is removed first, so the monitor has no origin\'s last'
          ' report to go on, and the proxy stays stopped at least %s s (the origins beat every'
          ' second) before it starts; it alternates with the two above. For it, origins a and'
          ' b also send their heartbeats by unicast to the proxy (a second `HeartbeatAddress'
          ' %s`, and a second `HeartbeatListen` there in the proxy; the multicast stays for'
          ' the other rows): a unicast sender hears "port unreachable" from the stopped'
          ' proxy and beats every 100 ms until it listens, and the balancer\'s first picks,'
          ' while no member has a report, wait up to 250 ms for one. Multicast origins get no'
          ' such answer and are heard only at their next interval, up to 1 s after the'
          ' start: the first start of a new proxy whose origins send only by multicast is'
          ' not covered by this row. "First seen" is when the status page, polled every'
          ' 20 ms from before the start, first showed a and b in the table, from the'
          ' moment the start returned.'
          % (fmt(f.get('first_down_s'), 1), f.get('first_hb', '<proxy>:<port>')))
    w('')
    w('| method | start | requests, first %d s | failed | p99 ms, first %d s | steady p99 ms'
      ' | ratio | slow until (s) | share to b: first %d s / steady |'
      % ((f['cold_first_s'],) * 3))
    w('|---|---|---|---|---|---|---|---|---|')
    labels = {'heartbeat': 'heartbeat', 'bybusyness': 'bybusyness',
              'first': 'heartbeat, first start'}
    variants = [m for m in ('heartbeat', 'bybusyness', 'first') if cold.get(m)]
    for method in variants:
        for i, r in enumerate(cold[method]):
            w('| %s | %d | %d | %d%s | %s | %s | %s | %s | %s / %s |' % (
                labels[method], i + 1, r['first']['requests'], r['first']['failed'],
                ' (%s)' % ', '.join('%s: %d' % kv for kv in sorted(r['first']['failed_by']
                                                                   .items()))
                if r['first']['failed'] else '',
                fmt(r['first']['p99_ms'], 0), fmt(r['steady']['p99_ms'], 0),
                fmt(r['ratio'], 2), fmt(r['slow_until_s'], 2),
                fmt(r['share_b_first'], 2), fmt(r['share_b_steady'], 2)))
    w('')
    w('Medians: %s.' % '; '.join(
        '%s first-%d-s p99 %s ms, steady %s ms, ratio %s' % (
            labels[m], f['cold_first_s'], fmt(median([r['first']['p99_ms'] for r in cold[m]]), 0),
            fmt(median([r['steady']['p99_ms'] for r in cold[m]]), 0),
            fmt(median([r['ratio'] for r in cold[m]]), 2)) for m in variants))
    if first_runs:
        w('')
        w('| first start | proxy down before (s) | removed | a / b first seen (s) | answers'
          ' a/b, by 0.25 s after the start returned |')
        w('|---|---|---|---|---|')
        for i, r in enumerate(first_runs):
            seen = list(r.get('first_seen_s', {}).values())
            w('| %d | %s | %s | %s | %s |' % (
                i + 1, fmt(r.get('down_s'), 2), ', '.join(r.get('removed', [])) or 'nothing',
                ' / '.join(fmt(x, 3) if x is not None else 'not seen' for x in seen),
                ' '.join('%d/%d' % (o.get('a', 0), o.get('b', 0))
                         for o in r.get('first_origins', []))))
    w('')
    w('### Black hole')
    w('')
    w('bench/openloop offers %g requests/s (Poisson, a seed per round) for %d s to a'
      ' method\'s balancer over a, b and c, and alternately to the same method\'s balancer'
      ' over a and b alone: the same load without the black hole. Each round starts with a'
      ' graceful restart of the proxy, which starts the ejection state afresh (and keeps'
      ' the table): the failures include those it takes to eject c, which makes the share'
      ' depend on the length of a run. Every run ends with all its requests answered;'
      ' before a heartbeat run the proxy\'s table also says that the origins are idle.'
      ' Healthy p99: of the successful requests, all answered by a'
      ' or b; the ratio is the median of the per-round ratios (with / without).'
      % (f['bh_rate'], f['bh_seconds']))
    w('')
    w('| method | failed % (runs) | median | failed % without | healthy p99 ms without'
      ' (runs) | with (runs) | median without | median with | ratio | share to a with /'
      ' without |')
    w('|---|---|---|---|---|---|---|---|---|---|')
    for method in ('heartbeat', 'byrequests', 'bybusyness'):
        s = bh[method]
        w('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |' % (
            method, ' '.join(fmt(x, 1) for x in s['failed_pct']),
            fmt(s['median_failed_pct'], 1),
            ' '.join(fmt(x, 1) for x in s['base_failed_pct']),
            ' '.join(fmt(r['p99_ms'], 0) for r in s['base_runs']),
            ' '.join(fmt(r['p99_ms'], 0) for r in s['bh_runs']),
            fmt(s['base_p99_ms'], 0), fmt(s['bh_p99_ms'], 0), fmt(s['p99_ratio'], 2),
            fmt(s['share_a'], 2), fmt(s['base_share_a'], 2)))
    w('')
    hole = f.get('black_hole_c')
    w('Our proxy logged %d `LB0310` (ejected) and %d `LB0311` (back) lines over these runs%s.'
      % (f['black_hole_log']['LB0310'], f['black_hole_log']['LB0311'],
         '; at the end, c in `bh-heartbeat`: ejected %s, ejections in a row %d, failure rate'
         ' %s' % ('yes' if hole['ejected'] else 'no', hole['ejections'],
                  fmt(hole['failure_rate'], 2)) if hole else ''))
    w('')
    w('### Slow start')
    w('')
    w('The closed-loop clients on a heartbeat balancer over a and b, with'
      ' `HeartbeatSlowStart` set in its `<Proxy>` section (a balancer per setting,'
      ' alternating). After %s s, %s s of steady state (b\'s share of the answers, p99),'
      ' b is stopped (graceful stop: it finishes what it holds, its sender says'
      ' `state=stopping`); once the proxy\'s table shows it not up, it is started again'
      ' (a new process); it is back when the table shows it up with ready slots (its'
      ' first report after a start may say `ready=0`, its workers not counted yet; then'
      ' it is back with the next one). Then: failed requests and p99 of the requests'
      ' started in the %d s after, and the time until b\'s share is within 10%% of its steady share (the'
      ' end of the first 1-s window, sliding by 0.1 s, where it is; measured over %d s or'
      ' the ramp plus 1.5 s, whichever is longer). While b is away, a holds every request'
      ' and queues: how fast b takes its share back is also how fast that queue drains.'
      % (fmt(f['ss_settle_s'], 1), fmt(f['ss_steady_s'], 1),
         f['ss_window_s'], f['ss_window_s']))
    w('')
    w('| HeartbeatSlowStart | p99 ms after (runs) | median | failed (runs) | steady p99 ms'
      ' | b\'s steady share | b\'s share, first second back | share back after s (runs)'
      ' | median |')
    w('|---|---|---|---|---|---|---|---|---|')
    for s, v in sorted(ss.items(), key=lambda kv: int(kv[0])):
        w('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            slow_start_label(s) + (' (directive missing: the default)'
                                   if v['balancer'] == 'heartbeat' else ''),
            ' '.join(fmt(t['after']['p99_ms'], 0) for t in v['trials']), fmt(v['p99_ms'], 0),
            ' '.join(str(x) for x in v['failed']), fmt(v['steady_p99_ms'], 0),
            fmt(v['steady_share_b'], 2), fmt(v['share_b_first_s'], 2),
            ' '.join(fmt(t['settle_s'], 1) if t['settle_s'] is not None
                     else '>%s' % fmt(t['span_s'], 1) for t in v['trials']),
            fmt(v['settle_s'], 1)))
    for s in f.get('slow_start_missing', []):
        w('| %ds | not measured: directive missing (`httpd -t`: Invalid command'
          ' \'HeartbeatSlowStart\') | | | | | | | |' % s)
    w('')
    return rows, section


PROXY_LABELS = {
    'bybusyness': 'bybusyness',
    'heartbeat': 'heartbeat, header off (before issue 17)',
    'header': 'heartbeat, `HeartbeatResponseHeader on`',
    'p2c-header': 'heartbeat p2c, `HeartbeatResponseHeader on`',
}


def proxies_ok(mp):
    """Issue 17's bars: (two proxies met, one proxy met)."""
    two, one = mp['two'], mp['one']
    h = two['header']
    ok2 = (h['p99_ms'] is not None and h['p99_ms'] <= 600 and h['rps'] >= 81
           and h['errors'] == 0 and two['bybusyness']['p99_ms'] is not None
           and h['p99_ms'] < two['bybusyness']['p99_ms'])
    ok1 = (one['header']['errors'] == 0 and one['header']['p99_ms'] is not None
           and one['heartbeat']['p99_ms'] is not None
           and one['header']['p99_ms'] <= 1.1 * one['heartbeat']['p99_ms'])
    return ok2, ok1


def reports_rates(runs):
    """Median over runs of the load reports taken per second, per member
    address and summed over the proxies: {address: rate}."""
    per = {}
    for r in runs:
        total = {}
        for members in r['reports_per_s'].values():
            for m, x in members.items():
                addr = m.split('//')[-1]
                total[addr] = total.get(addr, 0) + x
        for addr, x in total.items():
            per.setdefault(addr, []).append(x)
    return {addr: median(xs) for addr, xs in per.items()}


def render_proxies(mp, cfg):
    """Several proxies over one pool of origins, per-response load reports
    (issue 17). -> (its rows of the summary table, its section)."""
    rows, section = [], []
    w = rows.append
    two, one = mp['two'], mp['one']
    ok2, ok1 = proxies_ok(mp)

    def cell(v):
        return '%s ms, %s req/s, %d errors' % (fmt(v['p99_ms'], 0), fmt(v['rps'], 1), v['errors'])
    w('| several proxies: 2 proxies x %d clients, origins of %d + %d workers, %d ms | with the'
      ' header: p99 on the worse proxy <= 600 ms, >= 81 req/s in total, 0 errors, p99 below'
      ' bybusyness | with the header %s; bybusyness %s; header off %s%s | %s |'
      % (mp['clients_per_proxy'], mp['workers'][0], mp['workers'][1], mp['service_ms'],
         cell(two['header']), cell(two['bybusyness']), cell(two['heartbeat']),
         '; p2c with the header %s' % cell(two['p2c-header']) if 'p2c-header' in two else '',
         verdict(ok2)))
    w('| several proxies: one proxy, the same %d clients | p99 with the header <= 1.1x without'
      ' (about 420 ms before issue 17), 0 errors | with the header %s; without %s | %s |'
      % (mp['clients_per_proxy'] * 2, cell(one['header']), cell(one['heartbeat']), verdict(ok1)))

    w = section.append
    w('## 6. Several proxies, one pool of origins')
    w('')
    w('The bars of issue 17 (this benchmark ran on %s, load average %s at its start, %s at its'
      ' end). Namespaces a, b, p1 and p2. Origins a (%d workers) and b (%d), `/svc` holding'
      ' its worker %d ms as in section 5 (capacity %d requests/s together), each twice: on'
      ' port 8080 as before issue 17, and on port 8081 with `HeartbeatResponseHeader on`;'
      ' every origin sends its heartbeats (`HeartbeatInterval 1s`) to the multicast group both'
      ' proxies listen on, so that each proxy\'s monitor hears all of them. The proxies in p1'
      ' and p2 have the same configuration: a balancer per row below over a and b (members'
      ' `disablereuse=on retry=1`, `ProxyPass ... timeout=5`). Two proxies: %d closed-loop'
      ' clients on each at once (the clients of section 5, one connection per request), on'
      ' the same balancer; one proxy: %d clients on p1 alone. A run measures from %s s to'
      ' %s s after the clients start; the methods alternate, %d rounds, and before each run'
      ' both proxies\' tables say that the origins are idle. p99 is of the successful'
      ' requests started in the window, on the worse of the two proxies in that run;'
      ' requests/s counts the successful answers to requests started in the window, both'
      ' proxies together; errors count failed requests over the whole run (a non-2xx answer,'
      ' a reset, a timeout); share to b: of the answers in the window (b has %s of the'
      ' capacity).'
      % (mp['date'], mp['load_start'], mp['load_end'], mp['workers'][0], mp['workers'][1],
         mp['service_ms'], round(sum(mp['workers']) * 1000 / mp['service_ms']),
         mp['clients_per_proxy'], mp['clients_per_proxy'] * 2, fmt(mp['settle_s'], 1),
         fmt(mp['settle_s'] + mp['window_s'], 1), len(two['header']['runs']),
         fmt(mp['workers'][1] / sum(mp['workers']), 2)))
    w('')
    w('| proxies | method | p99 ms, worse proxy (runs) | median | req/s (runs) | median |'
      ' errors | share to b | load reports taken per s, a / b (both proxies) |')
    w('|---|---|---|---|---|---|---|---|---|')
    for key, label in (('two', '2 x %d clients' % mp['clients_per_proxy']),
                       ('one', '1 x %d clients' % (mp['clients_per_proxy'] * 2))):
        for name in [n for n in PROXY_LABELS if n in mp[key]]:
            v = mp[key][name]
            rates = reports_rates(v['runs'])
            w('| %s | %s | %s | %s | %s | %s | %d | %s | %s |' % (
                label, PROXY_LABELS.get(name, name),
                ' '.join(fmt(r['p99_ms'], 0) for r in v['runs']), fmt(v['p99_ms'], 0),
                ' '.join(fmt(r['rps'], 1) for r in v['runs']), fmt(v['rps'], 1), v['errors'],
                fmt(v['share_b'], 2), ' / '.join(fmt(x, 1) for _, x in sorted(rates.items()))
                if rates and any(rates.values()) else '-'))
    w('')
    members = [m for ms in mp['members'].values() for m in ms or []]
    w('Over these runs the proxies took %d load reports in the balancers over the origins with'
      ' the header on, %d in the one over the origins without it, and ignored %d'
      ' (`load_reports`, `load_ignored` on their status pages at the end).'
      % (sum(m['load_reports'] for m in members if m['member'].endswith(':8081')),
         sum(m['load_reports'] for m in members if m['member'].endswith(':8080')),
         sum(m['load_ignored'] for m in members)))
    w('')
    return rows, section


def membership_cycles_ok(c):
    """Row 2's bars: every cycle done, nothing crashed, the children's
    Private_Dirty flat (< 5% or < 1 MB), one address per slot and never
    more members than origins or slots, no failed request while a member
    was up."""
    growth = c['private_dirty_growth_kb']
    return (c['cycles'] >= c['cycles_wanted'] and c['parent_alive'] and c['children_same']
            and not c['crash_lines']
            and (growth < 1024 or (c['private_dirty_growth_pct'] or 0) < 5)
            and c['max_distinct'] <= min(c['origins'], c['slots']) and c['max_duplicates'] == 0
            and not c['strangers'] and c['slots_shared'] == 0
            and c['requests_failed_with_member_up'] == 0)


def wrk_failed_cell(runs):
    """'N of M (non-2xx a, read b, ...)' over wrk runs."""
    failed = sum(r['failed'] for r in runs)
    kinds = {'non-2xx': sum(r['non_2xx'] for r in runs)}
    for k in ('connect', 'read', 'write', 'timeout'):
        kinds[k] = sum(r['socket_errors'][k] for r in runs)
    return '%d of %d%s' % (failed, sum(r['requests'] or 0 for r in runs),
                           ' (%s)' % ', '.join('%s %d' % (k, v) for k, v in kinds.items() if v)
                           if failed else '')


def render_membership(mb, cfg):
    """Dynamic membership (issue 18, HeartbeatJoin): the request path over
    joined members, join/leave cycles, an origin's graceful stop and the
    proxy's graceful restart under load. -> (its rows of the summary
    table, its section)."""
    rows, section = [], []
    w = rows.append
    rp, c, sr = mb['request_path'], mb['cycles'], mb['stop_restart']
    w('| membership: request path, 64 joined members | joined / 64 static byrequests >= 0.97 |'
      ' %s (%s vs %s requests/s) | %s |'
      % (fmt(rp['ratio'], 3), fmt(rp['variant_median'], 0), fmt(rp['baseline_median'], 0),
         verdict(rp['ratio'] is not None and rp['ratio'] >= 0.97)))
    w('| membership: %s join/leave cycles, %d origins over %d slots | no crash; children\'s'
      ' Private_Dirty flat (< 5%% or < 1 MB); one address per slot, never more members than'
      ' origins; 0 failed requests while a member is up | %d cycles in %s s, parent and'
      ' children alive%s; Private_Dirty %s -> %s kB (%s%%); at most %d members listed, %d'
      ' duplicates, %d slots with two addresses; %d of %d requests failed | %s |'
      % ('{:,}'.format(c['cycles_wanted']), c['origins'], c['slots'], c['cycles'],
         fmt(c['seconds'], 0), '' if c['children_same'] else ' (**children replaced**)',
         '{:,}'.format(c['private_dirty_kb_before']), '{:,}'.format(c['private_dirty_kb_after']),
         fmt(c['private_dirty_growth_pct'], 1), c['max_distinct'], c['max_duplicates'],
         c['slots_shared'], c['requests_failed'], c['requests'],
         verdict(membership_cycles_ok(c))))
    if sr.get('error'):
        w('| membership: graceful stop of a joined origin under wrk | 0 failed | not measured:'
          ' %s | - |' % sr['error'].replace('|', '/')[:200])
        w('| membership: proxy graceful restart under wrk, joined members | 0 failed | not'
          ' measured | - |')
    else:
        gs = sr['graceful_stop']
        alone = [r for r in gs if not r['drain']]
        drained = [r for r in gs if r['drain']]
        # Judged on the way out docs/deployment.md gives (drain, then
        # stop): a stop alone closes the origin's listener and its
        # keep-alive connections at once, which no balancer can see
        # coming (AH01102), static members alike.
        w('| membership: graceful stop of a joined origin under wrk (`hbctl drain`, then'
          ' graceful-stop, docs/deployment.md) | 0 failed | %d stops: %s; a graceful-stop'
          ' alone, %d stops: %s | %s |'
          % (len(drained), wrk_failed_cell(drained), len(alone), wrk_failed_cell(alone),
             verdict(bool(drained) and sum(r['failed'] for r in drained) == 0)))
        rs = sr['restart']
        # Judged with a connection per request: with keep-alive, the old
        # children close their idle client connections as they stop (an
        # httpd graceful restart does that with any member), and wrk
        # counts a request sent on one as a read error.
        w('| membership: proxy graceful restart under wrk, joined members | 0 failed | %d'
          ' restarts, a connection per request: %s (static members: %s); keep-alive: %s'
          ' (static members, same: %s) | %s |'
          % (len(rs['joined']), wrk_failed_cell(rs['joined-close']),
             wrk_failed_cell(rs['static-close']), wrk_failed_cell(rs['joined']),
             wrk_failed_cell(rs['static']),
             verdict(sum(r['failed'] for r in rs['joined-close']) == 0)))

    w = section.append
    w('## 7. Dynamic membership')
    w('')
    w('Issue 18 (`HeartbeatJoin`): origins whose signed heartbeats announce a balancer'
      ' (`join=NAME`, `addr=` their source address) become its members, with no'
      ' `BalancerMember` line. This benchmark ran on %s (load average %s at its start, %s at'
      ' its end). Every proxy here has `HeartbeatSecret` and balancers'
      ' `<Proxy balancer://NAME>` with `ProxySet lbmethod=heartbeat growth=N` and'
      ' `HeartbeatJoin on`, nothing else, unless said. Rows 1 and 2 sign the heartbeats in'
      ' Python (HMAC-SHA256, as test/integration/test_join.py) and send each from its'
      ' origin\'s own address; rows 3 and 4 use real origins with our sender'
      ' (`HeartbeatBalancer`, `HeartbeatSecret`, `HeartbeatSource`, `HeartbeatInterval %s`).'
      ' Failed, for wrk: its non-2xx answers plus its socket errors (connect, read, write,'
      ' timeout).' % (mb['date'], mb['load_start'], mb['load_end'],
                      sr.get('interval', '250ms')))
    w('')
    w('### Request path over joined members')
    w('')
    w('The origins of section 1 (three event-MPM httpds serving a 128-byte file on'
      ' 127.0.1.1-64, one port). One proxy (event MPM, 2 x 32 threads, keep-alive) with'
      ' `balancer://jn64` (growth=64, no member configured) and `balancer://br64` (the same'
      ' 64 addresses as static `BalancerMember`s, byrequests). A thread sends each of the'
      ' 64 origins\' signed heartbeats (`int=1000`, `join=jn64`) once a second from its'
      ' address (%d sent in all); the runs start once the status page lists all 64 as'
      ' `joined` (%s s after the first heartbeats). wrk as in section 1, alternating, %d'
      ' rounds:' % (rp['heartbeats_sent'], fmt(rp['all_joined_s'], 1), len(rp['baseline_rps'])))
    w('')
    w('    ' + rp['wrk_command'])
    w('')
    w('| balancer | requests/s (runs) | median | errors |')
    w('|---|---|---|---|')
    w('| br64: 64 static members, byrequests | %s | %s | %d |'
      % (' '.join(fmt(x, 0) for x in rp['baseline_rps']), fmt(rp['baseline_median'], 0),
         rp['baseline_errors']))
    w('| jn64: 64 joined members, heartbeat | %s | %s | %d |'
      % (' '.join(fmt(x, 0) for x in rp['variant_rps']), fmt(rp['variant_median'], 0),
         rp['variant_errors']))
    w('')
    w('Ratio (median of the per-round ratios): %s; per round %s. At the end jn64 listed %d'
      ' members, %d of them joined.'
      % (fmt(rp['ratio'], 3), ' '.join(fmt(x, 3) for x in rp['paired_ratios']),
         rp['members'], rp['joined_members']))
    w('')
    w('### Join/leave cycles')
    w('')
    w('Eight of those addresses (127.0.1.1-8) and a proxy with `balancer://cyc` (growth=%d,'
      ' `LogLevel lbmethod_heartbeat:info`; 2 children of 32 threads). Each origin\'s signed'
      ' heartbeat goes out every 200 ms (`int=200`). A cycle: the origin announces'
      ' (`join=cyc`) until the status page lists it `joined`, then sends heartbeats without'
      ' `join=` until it is listed `left` (disabled by the next sweep, about a second), and'
      ' announces again. All eight cycle at once until %s cycles in all; an origin stops'
      ' announcing only while another one announces and is a member (so that one always'
      ' is: without that rule they fall into step with the sweeps and all leave together).'
      ' Meanwhile %d clients send requests through the balancer (10 ms pause between'
      ' answers) and the status page is read about every 30 ms. The memory of the proxy\'s'
      ' children (sum of `Private_Dirty` in `/proc/PID/smaps_rollup`) is taken after 2 s of'
      ' wrk (-c64) over every member, before the first cycle, every %d cycles, and at the'
      ' end, when all eight announce again.'
      % (c['slots'], '{:,}'.format(c['cycles_wanted']), c.get('clients', 2),
         max(1, c['cycles_wanted'] // 10)))
    w('')
    bal = c.get('balancer') or {}
    w('| | |')
    w('|---|---|')
    w('| cycles | %d in %s s (%s per origin) |' % (c['cycles'], fmt(c['seconds'], 1), ', '.join(
        str(v) for _, v in sorted(c['cycles_by_origin'].items()))))
    w('| proxy | parent alive: %s; children the same processes before and after: %s (%s);'
      ' crash lines in the error log: %d |'
      % ('yes' if c['parent_alive'] else '**no**', 'yes' if c['children_same'] else '**no**',
         ' '.join(str(p) for p in c['children_after']), len(c['crash_lines'])))
    w('| children\'s Private_Dirty, kB, by cycles done | %s |' % ', '.join(
        '%d: %s' % (n, '{:,}'.format(kb)) for n, kb in c['private_dirty_by_cycles']))
    w('| children\'s Private_Dirty / Rss, before -> after | %s -> %s kB (%+d kB, %s%%) /'
      ' %s -> %s kB |'
      % ('{:,}'.format(c['private_dirty_kb_before']), '{:,}'.format(c['private_dirty_kb_after']),
         c['private_dirty_growth_kb'], fmt(c['private_dirty_growth_pct'], 1),
         '{:,}'.format(c['rss_kb_before']), '{:,}'.format(c['rss_kb_after'])))
    w('| status page, %d reads | at most %d members listed (%d distinct), %d listed twice,'
      ' %d not one of the eight; fewest joined at once: %s (%d reads with none) |'
      % (c['polls'], c['max_listed'], c['max_distinct'], c['max_duplicates'],
         len(c['strangers']), c['min_joined'], c['polls_none_joined']))
    w('| slots (LB0315 joined, LB0319 joined again) | %d slots used, %d holding two'
      ' addresses or an address in two slots; LB0315 %d, LB0319 %d, LB0317 (disabled) %d |'
      % (len(c['slot_urls']), c['slots_shared'], c['lb0315'], c['lb0319'], c['lb0317']))
    w('| balancer counters | joined %s, left %s, join_full %s; picks %s, no member (503) %s |'
      % (bal.get('joined'), bal.get('left'), bal.get('join_full'), bal.get('picks_most'),
         bal.get('no_data')))
    w('| requests during the cycles | %d, failed %d%s; failed while the status page showed a'
      ' member joined: %d |'
      % (c['requests'], c['requests_failed'], ' (%s)' % ', '.join(
          '%s: %d' % kv for kv in sorted(c['failed_by'].items())) if c['failed_by'] else '',
         c['requests_failed_with_member_up']))
    w('')
    if sr.get('error'):
        w('### Graceful stop and restart')
        w('')
        w('Not measured: %s' % sr['error'])
        w('')
        return rows, section
    w('### Graceful stop of an origin, graceful restart of the proxy')
    w('')
    w('Three origins (event MPM, 2 x 64 threads, keep-alive) on 127.0.4.1-3, each with'
      ' `HeartbeatStateFile` and `HeartbeatBalancer` for three balancers of one proxy (event'
      ' MPM, 2 x 32 threads and room for 2 more children during a graceful restart): `rs`,'
      ' `gs` and `gd` (growth=8, no `maxattempts` set; `gs` and `gd` with'
      ' `HeartbeatJoinMember retry=1`, so that a member a stop put in error is not still'
      ' out, for mod_proxy\'s 60 s, at the next stop), and `balancer://static`, the same three'
      ' origins as static byrequests members. All joined within %s s of their start. wrk'
      ' -c%d for %d s; the event comes %s s into the run.'
      % (fmt(sr.get('joined_s'), 1), sr.get('wrk_conns', 32), sr['wrk_seconds'],
         fmt(sr['event_at_s'], 1)))
    w('')
    w('Proxy graceful restart (SIGUSR1; the harness waits until the old children stopped'
      ' accepting), %d rounds, each of: static then joined (`rs`) with wrk\'s keep-alive'
      ' connections, then the same with `Connection: close` (a connection per request):'
      % len(sr['restart']['joined']))
    w('')
    w('| balancer | client connections | failed (runs) | non-2xx | read errors | requests |'
      ' restart took (s) |')
    w('|---|---|---|---|---|---|---|')
    for name, label, conn in (('static', 'static, byrequests', 'keep-alive'),
                              ('joined', 'rs, joined', 'keep-alive'),
                              ('static-close', 'static, byrequests', 'one per request'),
                              ('joined-close', 'rs, joined', 'one per request')):
        runs = sr['restart'][name]
        w('| %s | %s | %s | %d | %d | %d | %s |' % (
            label, conn, ' '.join(str(r['failed']) for r in runs),
            sum(r['non_2xx'] for r in runs), sum(r['socket_errors']['read'] for r in runs),
            sum(r['requests'] or 0 for r in runs),
            ' '.join(fmt(r['event_s'], 2) for r in runs)))
    w('')
    w('Graceful stop (SIGWINCH) of one origin (in turn), through `gs`; through `gd`, `hbctl'
      ' drain` on the origin first, then, once the proxy\'s table says `drain`, two'
      ' intervals later the same stop. The stopped origin is started again (after `hbctl'
      ' undrain`) and joins again before the next stop. The times are read from the'
      ' proxy\'s status page, polled every 2 ms or so (each read takes a few ms):')
    w('')
    w('| balancer | origin | failed | non-2xx | socket errors | requests | proxy saw `drain`'
      ' after hbctl returned (ms) | proxy saw `stopping` after SIGWINCH (ms) | origin exited'
      ' after (s) | joined again after (s) |')
    w('|---|---|---|---|---|---|---|---|---|---|')
    for r in sr['graceful_stop']:
        ev = r.get('event', {})
        w('| %s | %s | %d | %d | %s | %d | %s | %s | %s | %s |' % (
            r['balancer'] + (' (drain, then stop)' if r['drain'] else ' (stop)'), r['origin'],
            r['failed'], r['non_2xx'],
            ', '.join('%s %d' % kv for kv in r['socket_errors'].items() if kv[1]) or '0',
            r['requests'] or 0,
            fmt(ev['drain_seen_s'] * 1000, 0) if ev.get('drain_seen_s') is not None else '-',
            fmt(ev['stopping_seen_s'] * 1000, 0) if ev.get('stopping_seen_s') is not None
            else 'n/a', fmt(ev.get('exited_s'), 2), fmt(r.get('back_s'), 2)))
    w('')
    lg = sr.get('proxy_log', {})
    w('The proxy\'s error log over these runs: %s.' % ', '.join(
        '%s %d' % (k, v) for k, v in sorted(lg.items())))
    w('')
    return rows, section


def slow_start_label(s):
    return '%ss' % s if int(s) else '0 (off)'


# Each benchmark's results key and renderer, in the order of the report.
RENDERERS = (
    ('request_path', render_request_path),
    ('micro', render_micro),
    ('ingest', render_ingest),
    ('freshness', render_freshness),
    ('quality', render_quality),
    ('failure', render_failure),
    ('proxies', render_proxies),
    ('membership', render_membership),
)


def render_head(r, cfg):
    """Where and how the numbers were measured."""
    L = []
    w = L.append
    meta = r['meta']
    w('# Performance')
    w('')
    w('Generated by `make bench` (bench/run.py) on %s, in %.1f minutes. Do not edit by hand:'
      ' run it again. The raw numbers are also in `%s` (git-ignored).'
      % (meta['date'], meta['total_seconds'] / 60, meta['json_relpath']))
    w('')
    w('Machine: %s, %s cores, Linux %s, %s, wrk %s; commit %s. Load average %s at the start,'
      ' %s at the end: the machine is shared, so every comparison runs its variants'
      ' alternately (A B A B ...) in %d or more rounds and reports medians.'
      % (meta['cpu'], meta['nproc'], meta['kernel'], meta['httpd'], meta['wrk'],
         meta['commit'], meta['load_start'], meta['load_end'], cfg.rounds))
    for m in meta.get('remeasured', []):
        w('')
        w('Measured again on %s (commit %s, load average %s at the start, %s at the end, %.1f'
          ' minutes) and put in place of the first run\'s (`--merge-into %s`): %s.'
          % (m['date'], m['commit'], m['load_start'], m['load_end'], m['total_seconds'] / 60,
             m['from'], ', '.join(m['benchmarks'])))
    if meta.get('quick'):
        w('')
        w('**Quick run (`--quick`): durations shortened, numbers only indicative.**')
    w('')
    w('    make bench                       # everything, about %d minutes'
      % max(1, round(meta['total_seconds'] / 60)))
    w('    make bench BENCH_ARGS="--only ingest"   # one benchmark (request_path, micro,')
    w('                                            # ingest, freshness, quality, failure,')
    w('                                            # proxies, membership)')
    w('')
    return L


def render_tail(r):
    """The benchmarks that failed, how to read the numbers, the notes."""
    L = []
    w = L.append
    if r.get('failures'):
        w('## Failures')
        w('')
        w('These benchmarks did not complete in this run (their sections are missing):')
        w('')
        for name, why in sorted(r['failures'].items()):
            w('- %s: %s' % (name, why.replace('\n', ' ')[:400]))
        w('')
    w('## Reading these numbers')
    w('')
    w('- Every process of a comparison (load generator, proxy, origins, monitor) shares the'
      ' same %s cores, and other work on the machine comes and goes (load average above):'
      ' absolute throughputs are modest and single runs vary; compare the variants of one'
      ' table, which ran alternately, and look at the raw runs next to each median.'
      % r['meta']['nproc'])
    perf = (r.get('ingest') or {}).get('perf') or {}
    if any('pvm_' in row.get('symbol', '') for row in perf.get('symbols', [])):
        gp = (r.get('micro') or {}).get('getpid_ns')
        w('- The machine is a paravirtualised VM (`pvm_*` kernel symbols) where system calls'
          ' and context switches are expensive%s, which inflates every per-packet CPU figure'
          ' of the monitors, ours and stock alike.'
          % (' (`getpid()`: %s ns; well under 100 ns on bare metal)' % fmt(gp, 0) if gp else ''))
    w('- Targets are judged on medians, except loss, judged on every run; **missed** marks a'
      ' miss.')
    w('')
    notes = r.get('notes')
    if notes:
        w('## Notes')
        w('')
        for n in notes:
            w('- ' + n)
        w('')
    return L


def render_report(results, cfg):
    """The whole report, as text."""
    parts = [(name, render(results[name], cfg)) for name, render in RENDERERS
             if results.get(name)]
    L = render_head(results, cfg)
    L += ['## Summary', '', '| benchmark | target | result | |', '|---|---|---|---|']
    for _name, (rows, _section) in parts:
        L += rows
    L.append('')
    for _name, (_rows, section) in parts:
        L += section
    L += render_tail(results)
    return '\n'.join(L)


def write_report(results, cfg, path):
    with open(path, 'w') as f:
        f.write(render_report(results, cfg))


def analysis_notes(r, cfg):
    """Plain statements derived from the numbers, for the report."""
    notes = []
    if r.get('crashes'):
        notes.append('Crashes in the error logs: %s' % '; '.join(r['crashes'][:10]))
    ing = r.get('ingest')
    if ing:
        top = max(cfg.ingest_rates)
        cell = {(c['monitor'], c['rate'], c['senders']): c for c in ing['cells']}
        ours = [cell[('ours', rate, s)]['median_cpu_net_us_per_packet']
                for rate in cfg.ingest_rates for s in (10, 10000)]
        worst = max(x for x in ours if x is not None)
        if worst > 1.0:
            best = {rate: min(cell[('ours', rate, s)]['median_cpu_net_us_per_packet']
                              for s in (10, 10000)) for rate in cfg.ingest_rates}
            missed = [rate for rate in cfg.ingest_rates if best[rate] > 1.0]
            mod_share = [d['percent'] for d in (ing.get('perf') or {}).get('dsos', [])
                         if 'heartmonitor' in d['dso']]
            notes.append(
                'Ingest CPU per packet misses the 1 us target %s (best median per rate: %s).'
                ' The parser and the table are a small part of it%s; the rest is the kernel'
                ' (copying datagrams out, system-call entry and exit, made expensive on this'
                ' paravirtualised VM: `pvm_*` symbols) and, at low rates, waking the receiver'
                ' thread: it reads up to 64 datagrams per `recvmmsg` and, after a light'
                ' read, sleeps 1 to 20 ms (adapted to the rate) before the next, so a wake-up'
                ' is shared by about 200 packets at 10k/s, and its fixed cost weighs most at'
                ' the lowest rate.%s'
                % ('at every rate' if len(missed) == len(cfg.ingest_rates) else
                   'at %s' % ', '.join('%dk/s' % (x // 1000) for x in missed),
                   ', '.join('%s us at %dk/s' % (fmt(best[rate], 2), rate // 1000)
                             for rate in cfg.ingest_rates),
                   ' (the module itself has %s%% of the samples at the top rate)'
                   % fmt(sum(mod_share), 0) if mod_share else '',
                   ' Where the scheduler puts the receiver weighs as much: %s us per packet on'
                   ' the sender\'s CPU, %s us on the other (pinned, %dk/s; below the table).'
                   % (fmt(ing['placement']['median_same'], 2),
                      fmt(ing['placement']['median_other'], 2),
                      ing['placement']['rate'] // 1000) if ing.get('placement') else ''))
        lost = [cell[('ours', top, s)]['median_loss_pct'] for s in (10, 10000)]
        if any(x for x in lost):
            cpu_top = cell[('ours', top, 10000)]['median_cpu_us_per_packet']
            lower = [c for c in ing['cells'] if c['monitor'] == 'ours' and c['rate'] < top]
            runs = [x for c in ing['cells'] if c['monitor'] == 'ours' for x in c['runs']]
            matches = all(x['lost'] == x['kernel_drops'] for x in runs)
            worst = [100.0 * cell[('ours', top, s)]['max_lost'] / cell[('ours', top, s)]
                     ['median_sent'] for s in (10, 10000)]
            notes.append(
                'Ingest loses packets at %d/s (median %s%% with 10 senders, %s%% with 10,000;'
                ' worst run %s%% and %s%%; %s at the lower rates): some runs lose nothing,'
                ' others a few percent or more. At %s us per packet the receiver thread needs'
                ' %s of a core at that rate, on a 2-core machine where the sender and the'
                ' kernel\'s delivery use the rest; the socket\'s receive buffer absorbs the'
                ' difference for a moment, then the kernel drops%s.'
                % (top, fmt(lost[0], 1), fmt(lost[1], 1), fmt(worst[0], 1), fmt(worst[1], 1),
                   'none lost' if all(c['max_lost'] == 0 for c in lower) else 'some lost too',
                   fmt(cpu_top, 1), fmt(cpu_top * top / 1e6, 2),
                   ' (in every run the loss equals the socket\'s kernel drop counter)'
                   if matches else ''))
        spread = {}
        for rate in cfg.ingest_rates:
            c10 = cell[('ours', rate, 10)]['median_cpu_net_us_per_packet']
            c10k = cell[('ours', rate, 10000)]['median_cpu_net_us_per_packet']
            if c10 and c10k:
                spread[rate] = (c10k - c10) / c10 * 100
        over = {k: v for k, v in spread.items() if abs(v) > 20}
        if over:
            notes.append(
                '10 vs 10,000 senders: CPU per packet differs by more than 20%% at %s. Look'
                ' at the runs before reading it as a per-sender cost: where 10,000 senders are'
                ' cheaper than 10 (negative), or the runs of one cell already spread that'
                ' much, it is the machine\'s noise in the wake-up-dominated low rates.'
                % ', '.join('%dk/s (%+.0f%%)' % (k // 1000, v) for k, v in sorted(over.items())))
        pairs = [(rate, cell[('ours', rate, 10000)]['median_cpu_net_us_per_packet'],
                  cell[('ours-4k', rate, 10000)]['median_cpu_net_us_per_packet'])
                 for rate in cfg.ingest_rates if ('ours-4k', rate, 10000) in cell]
        if pairs and ing.get('huge_pages_reserved'):
            notes.append(
                'The table in a huge page against normal pages (ours vs ours-4k, 10,000'
                ' senders, net us per packet): %s. Each heartbeat of a large fleet lands on'
                ' another 4 KB page; on this VM a TLB miss is a nested page walk, and what it'
                ' costs depends on how much the host evicted while the receiver slept: small'
                ' on a quiet host, about 0.3 us per packet at 10k/s on a busy one.'
                % ', '.join('%dk/s %s vs %s' % (rate // 1000, fmt(a, 2), fmt(b, 2))
                            for rate, a, b in pairs))
        low = min(cfg.ingest_rates)
        st_low = [cell[k] for k in (('stock-multicast', low, 10), ('stock-multicast', low, 10000))
                  if k in cell]
        if any(c['max_lost'] for c in st_low):
            notes.append(
                'The stock monitor loses packets even at %d/s in some runs (worst run: %s):'
                ' its receive loop runs inside a mod_watchdog callback that returns every 5 s'
                ' to store its table, and nothing reads the socket until the watchdog calls it'
                ' again, while the socket keeps the default receive buffer (ours reads in a'
                ' thread of its own with a 4 MB buffer). This is the likely cause, not'
                ' measured separately.'
                % (low, ', '.join('%d of %d with %d senders' % (c['max_lost'], c['median_sent'],
                                                              c['senders'])
                                  for c in st_low if c['max_lost'])))
        st = cell.get(('stock-multicast', top, 10000))
        om = cell.get(('ours-multicast', top, 10000))
        if st and om:
            notes.append('Multicast, %d/s offered from 10,000 senders: ours lost %s%%, stock'
                         ' %s%% (medians); CPU per packet applied: ours %s us, stock %s us.'
                         % (top, fmt(om['median_loss_pct'], 1), fmt(st['median_loss_pct'], 1),
                            fmt(om['median_cpu_us_per_packet'], 2),
                            fmt(st['median_cpu_us_per_packet'], 2)))
    q = r.get('quality')
    fr = r.get('freshness')
    stopping_seen = fr and any('state=stopping' in (t.get('busy_origin_seen_as') or '')
                               for t in fr['ours']['trials'])
    if q and q['variants']['most']['codes_5xx'].get('503'):
        v = q['variants']
        pre = v.get('most-prefork')
        notes.append(
            'Ours answers 503 under load with event-MPM origins (heartbeat most: %d 503s over'
            ' %d runs; %d LB0304 lines)%s. Cause, in mod_heartbeat (hb_count_workers and'
            ' hb_send): an origin reports `state=stopping` with `ready=0` as soon as no process'
            ' of the current generation is accepting, and the event MPM marks a child'
            ' `not_accepting` in the scoreboard whenever its listener pauses because every'
            ' worker is busy. A momentarily full one-process origin thus says it is stopping;'
            ' the balancer gives it nothing and, when both origins are full at their last'
            ' report, has no usable member and refuses with 503 (LB0304)%s. With prefork'
            ' origins, which never set `not_accepting`, heartbeat most had %s errors.'
            ' Suggested fix (modules/ not changed here): treat `not_accepting` as "busy", and'
            ' say `stopping` only for quiescing or a real shutdown.'
            % (v['most']['codes_5xx']['503'], len(v['most']['runs']), q['lb0304_lines'],
               '' if not stopping_seen else '; the freshness benchmark shows it directly: the'
               ' fully busy origin was in our table as `state=stopping`',
               '' if not stopping_seen else '',
               pre['errors_total'] if pre else 'n/a'))
    fail = r.get('failure')
    if fail:
        cold = fail['cold']['heartbeat']
        ratio = median([x['ratio'] for x in cold])
        failed = sum(x['first']['failed'] for x in cold)
        if failed or ratio is None or ratio > 1.5:
            slow = [x['slow_until_s'] for x in cold if x['slow_until_s'] is not None]
            notes.append(
                'Cold start misses the bar: heartbeat\'s p99 in the first %d s is %sx its'
                ' steady p99 (median of %d starts; bybusyness, which needs no reports, %sx);'
                ' failed requests: %d%s. %s'
                % (fail['cold_first_s'], fmt(ratio, 2), len(cold),
                   fmt(median([x['ratio'] for x in fail['cold']['bybusyness']]), 2), failed,
                   ' (%s)' % ', '.join('%s: %d' % kv for kv in sorted(sum_counts(
                       x['first']['failed_by'] for x in cold).items())) if failed else '',
                   'The last request slower than 1.5 times the steady p99 started %s s after'
                   ' the start returned (per start; the origins report every second);'
                   ' bybusyness, which spreads requests evenly whatever the capacity, has'
                   ' that p99 all along.' % ', '.join(fmt(x, 2) for x in slow)
                   if slow else ''))
        first = fail['cold'].get('first')
        if first and not all(x['first']['failed'] == 0 and x['ratio'] is not None
                             and x['ratio'] <= 1.5 for x in first):
            seen = [v for x in first for v in x.get('first_seen_s', {}).values()]
            notes.append(
                'First start of a new proxy misses the bar: heartbeat\'s first-%d-s p99 is %s'
                ' times its steady p99 (per start; failed requests: %s). The origins were first'
                ' seen in the table %s s after the start returned (a / b, per start).%s'
                % (fail['cold_first_s'], ' '.join(fmt(x['ratio'], 2) for x in first),
                   ' '.join(str(x['first']['failed']) for x in first),
                   ', '.join('/'.join(fmt(v, 2) if v is not None else '-'
                                      for v in x.get('first_seen_s', {}).values())
                             for x in first) if seen else 'n/a',
                   ' That is about their 1-s interval, not 100 ms: Linux limits the ICMP'
                   ' errors a host sends to one peer to a burst of 6 and then one a second'
                   ' (net.ipv4.icmp_ratelimit, 1000 ms; loopback is exempt, which is where'
                   ' the tests run), so after about 0.6 s of 100-ms beats a beat goes'
                   ' unanswered and mod_heartbeat falls back to its interval; a proxy stopped'
                   ' longer than that hears its origins at their next interval, as with'
                   ' multicast, and its first picks, after the 250-ms wait, rotate.'
                   if seen and min(v if v is not None else 9 for v in seen) > 0.3 else
                   ' The origins were heard early. Answers by origin (a / b) per quarter of'
                   ' the first second, per start: %s; a has 8 workers, so more than 8 in'
                   ' one quarter (one wave of 400-ms requests) means some waited.'
                   % '; '.join(' '.join('%d/%d' % (q.get('a', 0), q.get('b', 0))
                                               for q in x.get('first_origins', []))
                                      for x in first)
                   if seen else ''))
        if fail.get('slow_start_missing'):
            notes.append(
                '`HeartbeatSlowStart` is not in the modules this run used (`httpd -t`:'
                ' Invalid command): slow start was measured only off (the default), the %s'
                ' rows are not measured.' % ' and '.join('%d s' % s
                                                         for s in fail['slow_start_missing']))
    notes += header_notes(r)
    notes += membership_notes(r)
    if q:
        v = q['variants']
        ranking = sorted((n for n in v if v[n]['p99_ms'] is not None),
                         key=lambda n: (v[n]['errors_total'] > 0, v[n]['p99_ms']))
        notes.append('Balancing quality, ranked by (errors, median p99): %s.' % ', '.join(
            '%s %s ms/%d err' % (n, fmt(v[n]['p99_ms'], 0), v[n]['errors_total'])
            for n in ranking))
    return notes


def header_notes(r):
    """What the numbers say about HeartbeatResponseHeader (issue 17) where
    a bar is missed."""
    notes = []
    fr = r.get('freshness') or {}
    fh = fr.get('ours-header')
    if fh and (fh['median'] is None or fh['median'] > 0.2 or fh['timed_out']):
        reports = [t.get('reports_from_busy_origin') for t in fh['trials']
                   if t.get('reports_from_busy_origin') is not None]
        notes.append(
            'Freshness with the header on misses 0.2 s: median %s s (without the header %s s,'
            ' alternating). Load reports the proxy took from the busy origin, from the moment'
            ' it was made busy to the end of a trial: %d over %d trials (%s). A fully busy'
            ' origin answers nothing until a worker is free again, so no answer carries the'
            ' news, and the next heartbeat brings it, as without the header; the holding'
            ' connections\' requests are unfinished, so they would not count in the report\'s'
            ' busy either. Per-response reports make a busy origin\'s data fresher only while'
            ' it answers; an origin that sends an extra heartbeat at once when its ready count'
            ' falls a lot (issue 17, point 4) would cover this case.'
            % (fmt(fh['median'], 3), fmt(fr['ours']['median'], 3), sum(reports), len(reports),
               ' '.join(str(x) for x in reports)))
    rp = r.get('request_path') or {}
    hh = rp.get('ours_3_header')
    if hh and (hh['ratio'] is None or hh['ratio'] < 0.97) and hh['paired_ratios']:
        h3 = rp['ours_3']['paired_ratios']
        notes.append(
            'Request path over origins with the header on: heartbeat / byrequests %s, below'
            ' 0.97; its per-round ratios range from %s to %s (%s), those of the 3 members'
            ' without the header from %s to %s: a difference of a few percent is within what'
            ' this machine gives; more rounds (`--rounds`) tell a cost of taking the reports'
            ' from noise.'
            % (fmt(hh['ratio'], 3), fmt(min(hh['paired_ratios']), 3),
               fmt(max(hh['paired_ratios']), 3),
               ' '.join(fmt(x, 3) for x in hh['paired_ratios']), fmt(min(h3), 3),
               fmt(max(h3), 3)))
    oh = (r.get('request_path') or {}).get('origin_header')
    if oh and (oh['ratio'] is None or oh['ratio'] < 0.97):
        notes.append(
            'The origin\'s own throughput with the header on is %s of the same origin\'s with'
            ' it off (median of the per-round ratios; runs: off %s, on %s); CPU per request on'
            ' the origin, medians: off %s us, on %s us.'
            % (fmt(oh['ratio'], 3), ' '.join(fmt(x, 0) for x in oh['baseline_rps']),
               ' '.join(fmt(x, 0) for x in oh['variant_rps']),
               fmt(oh.get('baseline_cpu_us_median'), 1), fmt(oh.get('variant_cpu_us_median'), 1)))
    mp = r.get('proxies')
    if mp:
        ok2, ok1 = proxies_ok(mp)
        h, bb = mp['two']['header'], mp['two']['bybusyness']
        if not ok2:
            notes.append(
                'Two proxies with the header miss a bar: p99 on the worse proxy %s ms (bar 600,'
                ' bybusyness %s), %s req/s in total (bar 81), %d errors (%s).'
                % (fmt(h['p99_ms'], 0), fmt(bb['p99_ms'], 0), fmt(h['rps'], 1), h['errors'],
                   ', '.join('%s: %d' % kv for kv in sorted(sum_counts(
                       x['failed_by'] for x in h['runs']).items())) or 'none'))
        if not ok1:
            o = mp['one']
            notes.append(
                'One proxy with the header misses its bar: p99 %s ms against %s ms without it'
                ' (bar: at most 1.1 times), %d errors.'
                % (fmt(o['header']['p99_ms'], 0), fmt(o['heartbeat']['p99_ms'], 0),
                   o['header']['errors']))
    return notes


def membership_notes(r):
    """What the numbers say where a bar of the membership benchmark (issue
    18) is missed."""
    notes = []
    mb = r.get('membership')
    if not mb:
        return notes
    rp, c, sr = mb['request_path'], mb['cycles'], mb['stop_restart']
    if rp['ratio'] is None or rp['ratio'] < 0.97:
        notes.append(
            'Request path over 64 joined members: %s of the static byrequests balancer\'s'
            ' throughput, below 0.97; per-round ratios %s. Compare their spread with section'
            ' 1\'s 64-member rows before reading it as a cost of joined members.'
            % (fmt(rp['ratio'], 3), ' '.join(fmt(x, 3) for x in rp['paired_ratios'])))
    if not membership_cycles_ok(c):
        why = []
        if c['cycles'] < c['cycles_wanted']:
            why.append('only %d of %d cycles in %s s' % (c['cycles'], c['cycles_wanted'],
                                                         fmt(c['seconds'], 0)))
        if not (c['parent_alive'] and c['children_same']) or c['crash_lines']:
            why.append('a process died or was replaced (%s)' % '; '.join(c['crash_lines'][:3]))
        if c['private_dirty_growth_kb'] >= 1024 and (c['private_dirty_growth_pct'] or 0) >= 5:
            why.append('the children\'s Private_Dirty grew by %d kB (%s%%; by cycles: %s)'
                       % (c['private_dirty_growth_kb'], fmt(c['private_dirty_growth_pct'], 1),
                          ', '.join('%d: %d' % tuple(x) for x in c['private_dirty_by_cycles'])))
        if (c['max_distinct'] > min(c['origins'], c['slots']) or c['max_duplicates']
                or c['strangers'] or c['slots_shared']):
            why.append('the members listed: at most %d, %d twice, strangers %s, %d slots shared'
                       % (c['max_distinct'], c['max_duplicates'], c['strangers'],
                          c['slots_shared']))
        if c['requests_failed_with_member_up']:
            why.append('%d requests failed while a member was joined (%s)'
                       % (c['requests_failed_with_member_up'], c['failed_by']))
        notes.append('Join/leave cycles miss a bar: %s.' % '; '.join(why))
    if sr.get('error'):
        return notes
    alone = [x for x in sr['graceful_stop'] if not x['drain']]
    drained = [x for x in sr['graceful_stop'] if x['drain']]
    lg = sr.get('proxy_log', {})
    if sum(x['failed'] for x in alone):
        seen = [x['event'].get('stopping_seen_s') for x in alone
                if x.get('event', {}).get('stopping_seen_s') is not None]
        notes.append(
            'Graceful stop of a joined origin: %d failed in %d stops (%d answered with an'
            ' error status, %d client connections closed without an answer); %d after'
            ' `hbctl drain` (%d stops). SIGWINCH closes the origin\'s listening socket and its'
            ' idle keep-alive connections at once, while the proxy\'s table showed it'
            ' `stopping` only %s ms after the signal (median; per stop: %s, with'
            ' `HeartbeatInterval %s`): until then the balancer still picks it. A connection'
            ' refused (AH00957, %d in the log) fails over to another member (`maxattempts`);'
            ' a request on a backend connection the origin closes or resets at that moment'
            ' fails (AH01102, %d), and mod_proxy closes the client\'s connection without an'
            ' answer so that the client may retry (wrk counts a read error), or answers 502.'
            ' With the drain first, the proxies stop picking the origin before it closes'
            ' anything.'
            % (sum(x['failed'] for x in alone), len(alone), sum(x['non_2xx'] for x in alone),
               sum(x['socket_errors']['read'] for x in alone),
               sum(x['failed'] for x in drained), len(drained),
               fmt(median(seen) * 1000 if seen else None, 0),
               ' '.join(fmt(x * 1000, 0) for x in seen), sr.get('interval'),
               lg.get('AH00957', 0), lg.get('AH01102', 0)))
    if sum(x['failed'] for x in drained):
        notes.append(
            'Drain, then graceful stop: %d failed in %d stops (%s), where docs/deployment.md'
            ' says none should.' % (sum(x['failed'] for x in drained), len(drained),
                                    wrk_failed_cell(drained)))
    rs = sr['restart']
    joined_failed = sum(x['failed'] for x in rs['joined'] + rs['joined-close'])
    if joined_failed:
        non2xx = sum(x['non_2xx'] for x in rs['joined'] + rs['joined-close'])
        old_pids = {p for x in rs['joined'] + rs['joined-close']
                    for p in x.get('event', {}).get('old_children', [])}
        lines = sr.get('proxy_log_503', [])
        pids = set(int(p) for p in re.findall(r'\[pid (\d+):', ' '.join(lines)))
        static_read = sum(x['socket_errors']['read'] for x in rs['static'])
        notes.append(
            'Proxy graceful restart with joined members: %d failed with keep-alive clients'
            ' (read errors %d, non-2xx %d; per restart %s), %d with a connection per request;'
            ' static members under the same restarts: %d (per restart %s) and %d. A read error'
            ' is a client connection closed with a request unanswered: the old generation\'s'
            ' children close their keep-alive connections as they stop, and a request wrk has'
            ' just sent on one gets no answer (the proxy logs nothing); with a connection per'
            ' request there is none of that%s.%s'
            % (sum(x['failed'] for x in rs['joined']),
               sum(x['socket_errors']['read'] for x in rs['joined']),
               sum(x['non_2xx'] for x in rs['joined']),
               ' '.join(str(x['failed']) for x in rs['joined']),
               sum(x['failed'] for x in rs['joined-close']),
               sum(x['failed'] for x in rs['static']),
               ' '.join(str(x['failed']) for x in rs['static']),
               sum(x['failed'] for x in rs['static-close']),
               ', and static members show it too' if static_read else
               '; static members had none in these runs, so the difference may be the'
               ' joined members\' (how many keep-alive connections are caught at the moment'
               ' varies a lot from restart to restart: compare more rounds)',
               ' The %d non-2xx answers are this module\'s: the proxy logged %s (%d lines'
               ' LB0304/AH01170, from %s), i.e. a child found no usable joined member during'
               ' the restart, which static members never show.'
               % (non2xx, '; '.join(x.split('] ', 3)[-1][:160] for x in lines[:2]),
                  lg.get('LB0304', 0) + lg.get('AH01170', 0),
                  'old-generation children' if pids and pids <= old_pids else
                  'new-generation children' if pids and not (pids & old_pids) else
                  'children of both generations' if pids else 'no process named')
               if non2xx else ''))
    return notes
