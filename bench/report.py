#!/usr/bin/python3
"""report.py - the markdown report of one bench/run: bench/report.py RESULTS.tsv

Reads the tab-separated result lines bench/run wrote (fig, ratio, cmd,
note, meta) and prints docs/benchmarks.md: the machine, the versions, and
per benchmark its commands, min/median/max of every figure per side and
the ratio of medians bench/run asked for, next to the target (issue 9).
"""
import os
import platform
import statistics
import subprocess
import sys

TITLES = {
    "p2_sqlite": "P2: no-op jobs/s, SQLite results",
    "p2_pg": "P2: no-op jobs/s, PostgreSQL results",
    "accept": "Durable acceptances/s",
    "p3_get": "P3: GET /jobs/{id} vs nginx",
    "p3_hold": "P3: keep-alive polling connections held",
    "p4_latency": "P4: submit to SUCCESS on an idle node",
    "p1_pg": "P1: PostgreSQL to PostgreSQL",
    "p1_mariadb": "P1: MariaDB to MariaDB",
    "p1_clickhouse": "P1: ClickHouse to PostgreSQL",
    "p5_rss": "P5: peak RSS, 10x the rows",
}

#  What each benchmark measures, printed under its heading.
METHOD = {
    "p2_sqlite": "A fresh node (SQLite source, SQLite results, the embedded default) per run; "
                 "the jobs are posted over HTTP by bench/loadgen on keep-alive connections, the task "
                 "`SELECT 1 AS n` writes one row each; jobs/s = jobs / (first post to the moment "
                 "/metrics shows them all finished, polled every 50 ms). BullMQ: a Worker with as "
                 "many slots whose processor returns one row, jobs added by as many clients; jobs/s = "
                 "jobs / (first add to last completed). The first/last figures are jobs/s over the "
                 "first and the last 1,000 completions (by finished_at of every job); read-back is "
                 "GET /jobs/{last}/results",
    "p2_pg": "As p2_sqlite with PostgreSQL results, a fresh database per run",
    "accept": "Jobs posted to a queue no worker serves, so only the durable acceptance (LMDB "
              "commit before the answer) is measured; jobs per commit = the change of "
              "dungbeetle_jobs_submitted_total / dungbeetle_state_commits_total over the run. "
              "BullMQ: queue.add with no worker",
    "p3_get": "wrk against GET /jobs/{id} of a finished job and against nginx serving a static "
              "file of the same size (access log off, keep-alive unlimited)",
    "p3_hold": "bench/loadgen opens the connections (at most 256 connecting at once) and GETs "
               "/jobs/{id} on each once a second; an error is a refused or closed connection or "
               "a non-2xx answer. No reference",
    "p4_latency": "One job at a time on an idle node: POST, then GET /jobs/{id} over the same "
                  "connection until SUCCESS (no pause between polls); created to started from the "
                  "job's own timestamps (millisecond resolution). BullMQ: add, then "
                  "job.waitUntilFinished (QueueEvents), a Worker of 4 slots in another process; "
                  "started - created = processedOn - timestamp",
    "p1_pg": "One job copying the table through the node (time = finished_at - created_at, the "
             "server's clock) vs the raw client pipe (wall clock)",
    "p1_mariadb": "As p1_pg, MariaDB to MariaDB; the raw pipe is mariadb --batch into a fifo "
                  "read by LOAD DATA LOCAL INFILE",
    "p1_clickhouse": "As p1_pg, from a ClickHouse numbers() query into PostgreSQL results; the "
                     "raw pipe is the same query FORMAT TSV over curl into psql COPY",
    "p5_rss": "A fresh node per job; VmHWM (peak resident set) of the node after the job, "
              "writing the small and the ten times larger result from PostgreSQL "
              "generate_series into PostgreSQL",
}

#  Targets of ratios of medians: (bench, figure prefix, reference) -> text.
TARGETS = {
    ("p2_sqlite", "jobs/s", "bullmq always"): ">= 3",
    ("p2_sqlite", "jobs/s", "bullmq everysec"): ">= 1",
    ("p2_pg", "jobs/s", "bullmq always"): ">= 3",
    ("p2_pg", "jobs/s", "bullmq everysec"): ">= 1",
    ("p3_get", "req/s", "nginx"): ">= 0.9",
    ("p3_get", "p99", "nginx"): "<= 2",
    ("p4_latency", "submit to SUCCESS p50", "bullmq always"): "<= 1",
    ("p1_pg", "rows/s", "psql pipe"): ">= 0.9",
    ("p1_mariadb", "rows/s", "mariadb pipe"): ">= 0.9",
    ("p1_clickhouse", "rows/s", "curl | psql"): ">= 0.8",
}

#  Targets of single figures: (bench, figure prefix) -> text.
FIGURE_TARGETS = {
    ("p2_sqlite", "last/first"): ">= 0.8",
    ("p2_sqlite", "failed jobs"): "0",
    ("accept", "acceptances/s"): ">= 20,000 (dungbeetle)",
    ("p3_hold", "errors"): "0",
    ("p4_latency", "submit to SUCCESS p99"): "<= 10 ms (dungbeetle)",
    ("p4_latency", "created to started p99"): "<= 2 ms (dungbeetle)",
    ("p5_rss", "peak RSS growth"): "<= 16 MiB",
}


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def cell(text):
    """text for a markdown table cell"""
    return str(text).replace("|", "\\|")


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 10:
        return "{:.1f}".format(v)
    return "{:.3g}".format(v)


def target(table, key_bench, figure, *rest):
    for key, text in table.items():
        if key[0] == key_bench and figure.startswith(key[1]) and key[2:] == rest:
            return text
    return ""


def met(value, text):
    """whether value meets a target text such as '>= 0.9', '<= 10 ms', '0'"""
    if value is None or not text:
        return ""
    words = text.replace(",", "").split()
    try:
        if words[0] in (">=", "<="):
            bound = float(words[1])
            ok = value >= bound if words[0] == ">=" else value <= bound
        else:
            ok = value == float(words[0])
    except (ValueError, IndexError):
        return ""
    return "yes" if ok else "**no**"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    model = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1")
    mem = sh("awk '/^MemTotal/ { printf \"%.1f GiB\", $2 / 1048576 }' /proc/meminfo")
    disk = sh("df -hT /tmp | awk 'NR == 2 { print $1 \" (\" $2 \", \" $3 \")\" }'")
    dev = sh("lsblk -dno NAME,ROTA,SIZE,TYPE 2>/dev/null | awk '$4 == \"disk\" && $3 != \"0B\" "
             "{ printf \"%s%s %s, rotational=%s\", n++ ? \"; \" : \"\", $1, $3, $2 }'")
    return [
        ("cores", "{} ({})".format(os.cpu_count(), model or "unknown model")),
        ("memory", mem),
        ("kernel", "{} {}".format(platform.system(), platform.release())),
        ("disk (/tmp, where every server keeps its files)", disk + (" - " + dev if dev else "")),
    ]


def main():
    figs, ratios, cmds, notes, meta, order = {}, [], {}, {}, {}, []
    with open(sys.argv[1]) as f:
        for line in f:
            part = line.rstrip("\n").split("\t")
            kind = part[0]
            if kind == "fig" and len(part) == 7:
                _, bench, figure, side, _run, value, unit = part
                if bench not in order:
                    order.append(bench)
                entry = figs.setdefault(bench, {}).setdefault((figure, side), [unit, []])
                v = number(value)
                if v is not None:
                    entry[1].append(v)
            elif kind == "ratio" and len(part) == 5:
                ratios.append(part[1:])
            elif kind in ("cmd", "note") and len(part) == 3:
                (cmds if kind == "cmd" else notes).setdefault(part[1], []).append(part[2])
            elif kind == "meta" and len(part) == 3:
                meta[part[1]] = part[2]
    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w("Written by `bench/run` (`make bench`) with `bench/report.py`; do not edit by hand.")
    w("Every benchmark runs dungbeetle and its reference alternately in the same run,")
    w("{} time(s) each; the tables give min/median/max over the runs and ratios of".format(meta.get("runs", "?")))
    w("medians. Run {} to {}, mode **{}**.".format(meta.get("started", "?"), meta.get("finished", "?"),
                                                   meta.get("mode", "?")))
    if meta.get("mode") == "smoke":
        w("")
        w("**This is a smoke run**: tiny sizes, one run each, to show that every benchmark")
        w("runs and what the report looks like. Its figures say nothing about speed.")
    w("")
    w("The machine is shared with other work (builds and tests of other engineers")
    w("ran at the same time), so figures are noisy; the references ran under the")
    w("same load, which is why only ratios within one run are compared.")
    w("")
    w("")
    w("Sizes: `{}`.".format(meta.get("sizes", "")))
    w("")
    w("## Summary")
    w("")
    w("Every figure or ratio of medians that has a target (issue 9), in this run:")
    w("")
    w("| benchmark | figure | median | target | met |")
    w("| --- | --- | --- | --- | --- |")
    for bench in order:
        for (figure, side), (unit, vals) in figs[bench].items():
            t = target(FIGURE_TARGETS, bench, figure) if side == "dungbeetle" else ""
            if t:
                v = statistics.median(vals) if vals else None
                w("| {} | {} | {} | {} | {} |".format(bench, cell(figure), fmt(v), t, met(v, t)))
        for _, figure, a, b in [r for r in ratios if r[0] == bench]:
            t = target(TARGETS, bench, figure, b)
            va = figs[bench].get((figure, a), ["", []])[1]
            vb = figs[bench].get((figure, b), ["", []])[1]
            v = statistics.median(va) / statistics.median(vb) if va and vb and statistics.median(vb) else None
            if t:
                w("| {} | {} | {} | {} | {} |".format(bench, cell("{}: {} / {}".format(figure, a, b)),
                                                   fmt(v), t, met(v, t)))
    w("")
    w("## Caveats")
    w("")
    w("- The machine is shared: other engineers' builds and tests ran during the run, so")
    w("  spreads are wide; compare the ratios, measured side by side, not absolute figures.")
    w("- The loopback servers relax durability the way the tests do (PostgreSQL")
    w("  `fsync=off`, MariaDB `innodb_flush_log_at_trx_commit=0`); dungbeetle's own")
    w("  state store commits durably, as BullMQ's redis does with `appendfsync always`.")
    w("- P2's end is seen by polling /metrics every 50 ms (up to 50 ms late); the BullMQ")
    w("  side's by the worker's own completed events.")
    w("- The first/last completion windows are 1,000 jobs when 10,000 or more are posted,")
    w("  else a tenth of the jobs; job timestamps have millisecond resolution, so")
    w("  created-to-started figures are whole milliseconds.")
    w("- The first completion window overlaps the posting of all the jobs (the node")
    w("  accepts 20,000 jobs while its runners start on the first), so on 2 cores it is")
    w("  slowed by the submissions: a last/first ratio above 1 says the later jobs did not")
    w("  slow down, not that they sped up.")
    w("- The BullMQ clients are Node (one event loop, one ioredis connection per client):")
    w("  that is BullMQ's own client; bench/loadgen and wrk drive the HTTP sides.")
    w("- p3_hold runs once (60 s) whatever `--runs` says.")
    w("- There is no ZeroMQ client endpoint benchmark: the endpoint does not exist yet.")
    w("")
    w("## Running it")
    w("")
    w("```sh")
    w("make bench                            # every benchmark, 5 runs, rewrites this file")
    w("make bench BENCH_ARGS='--runs 3 p2_pg' # some of them")
    w("bench/run --smoke                     # once each at tiny size (tests/integration/bench_smoke.sh)")
    w("BENCH_JOBS=2000 bench/run p2_sqlite   # smaller: BENCH_JOBS BENCH_ACCEPT BENCH_CLIENTS")
    w("                                      # BENCH_WRK_SECONDS BENCH_HOLD_CONNS BENCH_HOLD_SECONDS")
    w("                                      # BENCH_LATENCY_JOBS BENCH_ROWS BENCH_RSS_ROWS")
    w("```")
    w("")
    w("bench/run installs what is missing (Debian nginx, wrk, redis-server as root;")
    w("`npm ci` in bench/bullmq from its lock file), starts every server on loopback in")
    w("a temporary directory (PostgreSQL, MariaDB and ClickHouse through")
    w("tests/lib/servers.sh, with their durability relaxed as in the tests; two")
    w("redis-server with `appendonly yes` and `appendfsync always` or `everysec`;")
    w("nginx) and stops them at the end. The load generators are bench/loadgen (C,")
    w("epoll, keep-alive HTTP/1.1), wrk, and for BullMQ bench/bullmq/bench.js (Node,")
    w("one ioredis connection per client); each runs the same way against both sides.")
    w("The driver-level benches (`make bench-drivers`: bench/pg_bench, mariadb_bench,")
    w("ch_bench, sqlite_results_bench) and bench/replica_bench.sh (mesh replica lag)")
    w("stay outside the suite.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    for k, v in machine():
        w("| {} | {} |".format(k, v))
    w("")
    w("## Versions")
    w("")
    w("| | |")
    w("| --- | --- |")
    for k in sorted(meta):
        if k.startswith("version_"):
            w("| {} | {} |".format(k[len("version_"):], meta[k] or "not installed"))
    w("")
    for bench in order + [b for b in cmds if b not in order]:
        w("## {} (`{}`)".format(TITLES.get(bench, bench), bench))
        w("")
        if bench in METHOD:
            w(METHOD[bench] + ".")
            w("")
        secs = meta.get("seconds_" + bench)
        if secs:
            w("Took {} s.".format(secs))
            w("")
        for c in cmds.get(bench, []):
            w("    " + c)
        if cmds.get(bench):
            w("")
        for n in notes.get(bench, []):
            w(n + ".")
            w("")
        if bench not in figs:
            w("**No figure: the benchmark failed** (see bench/run's output).")
            w("")
            continue
        w("| figure | side | runs | min | median | max | unit | target |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (figure, side), (unit, vals) in figs[bench].items():
            t = target(FIGURE_TARGETS, bench, figure) if side == "dungbeetle" else ""
            if vals:
                w("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    cell(figure), cell(side), len(vals), fmt(min(vals)), fmt(statistics.median(vals)),
                    fmt(max(vals)), unit, t))
            else:
                w("| {} | {} | 0 | - | - | - | {} | {} |".format(cell(figure), cell(side), unit, t))
        rows = [r for r in ratios if r[0] == bench]
        if rows:
            w("")
            w("| ratio of medians | value | target |")
            w("| --- | --- | --- |")
            for _, figure, a, b in rows:
                va = figs[bench].get((figure, a), ["", []])[1]
                vb = figs[bench].get((figure, b), ["", []])[1]
                r = statistics.median(va) / statistics.median(vb) if va and vb and statistics.median(vb) else None
                w("| {} | {} | {} |".format(cell("{}: {} / {}".format(figure, a, b)), fmt(r) if r is not None else "-",
                                                     target(TARGETS, bench, figure, b)))
        w("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
