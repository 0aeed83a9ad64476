# pair.sh - checks for failover pair tests (bash; needs /usr/bin/python3, jq)
#
#   . "$top_srcdir/tests/lib/pair.sh"
#   pair_poster OUT STOP HOST PORT [CLIENTS [PAUSE]]
#           # background: keep-alive clients (4) post jobs to HOST:PORT, each
#           # PAUSE s (0.1) apart, until the file STOP exists; each line of
#           # OUT is "JOB STATUS SENT_MS ANSWERED_MS" (STATUS err: no answer).
#           # Every 10th job runs task slow, the others quick (args: [n]),
#           # all on queue default.
#   pair_states POSTED HOST PORT [SECONDS]     # "JOB STATE ATTEMPTS DISPATCHER"
#           # for every job POSTED acknowledged (200), polled until terminal
#   pair_spans DIR HOSTS [SURVIVORS [KILLS]]   # attempt spans from the logs
#           # DIR/HOST.log (log_level DEBUG); prints "overlap ..." lines (two
#           # attempts of a job at once), "rerun ..." lines (an attempt that
#           # began after one on a host of SURVIVORS, default HOSTS, wrote
#           # its results), then "attempts N jobs N overlaps N reruns N".
#           # KILLS has "HOST MS" lines: a span still open on HOST ends at
#           # its next kill.
#   pair_log_ms LINE                           # a log line's time in ms
#   now_ms

now_ms () { date +%s%3N; }

pair_log_ms () { date -d "$(printf '%s' "$1" | cut -d' ' -f1)" +%s%3N; }

pair_poster () {
    /usr/bin/python3 - "$@" <<'PY' &
import sys, os, json, http.client, threading, itertools, time
out, stop, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
clients = int(sys.argv[5]) if len(sys.argv) > 5 else 4
pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.1
lock, counter = threading.Lock(), itertools.count(1)
f = open(out, "w", buffering=1)
def ms(): return int(time.time() * 1000)
def client():
    conn = None
    while not os.path.exists(stop):
        with lock:
            n = next(counter)
        task = "slow" if n % 10 == 0 else "quick"
        job, status, sent = "p%d" % n, "err", ms()
        try:
            conn = conn or http.client.HTTPConnection(host, port, timeout=15)
            conn.request("POST", "/tasks/%s/jobs" % task,
                         json.dumps({"job_id": job, "queue": "default", "args": [str(n)]}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse(); r.read(); status = r.status
        except Exception:
            conn = None
        with lock:
            f.write("%s %s %d %d\n" % (job, status, sent, ms()))
        time.sleep(pause)
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
PY
}

pair_states () {
    /usr/bin/python3 - "$@" <<'PY'
import sys, json, http.client, time
posted, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
wait = float(sys.argv[4]) if len(sys.argv) > 4 else 60
ids = [l.split()[0] for l in open(posted) if l.split()[1:2] == ["200"]]
left, states, conn = set(ids), {}, None
deadline = time.time() + wait
while left and time.time() < deadline:
    for job in sorted(left):
        try:
            conn = conn or http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/jobs/" + job)
            r = conn.getresponse(); body = r.read()
            if r.status == 200:
                d = json.loads(body)["data"]
                state = "%s %s %s" % (d["state"], d.get("attempts", "-"), d.get("dispatcher") or "-")
            else:
                state = "missing - -"
        except Exception as e:
            conn, state = None, "unreachable - %s" % type(e).__name__
        states[job] = state
        if state.split()[0] in ("SUCCESS", "FAILURE"):
            left.discard(job)
    if left:
        time.sleep(0.5)
for job in ids:
    print(job, states.get(job, "unknown - -"))
PY
}

pair_spans () {
    /usr/bin/python3 - "$@" <<'PY'
import re, sys, datetime, collections
d, hosts = sys.argv[1], sys.argv[2].split()
survivors = sys.argv[3].split() if len(sys.argv) > 3 else hosts
kills = collections.defaultdict(list)
if len(sys.argv) > 4 and sys.argv[4]:
    for line in open(sys.argv[4]):
        host, at = line.split()
        kills[host].append(int(at) / 1000.0)
start_re = re.compile(r"^(\S+) DEBUG worker: running job '([^']+)' attempt (\d+)")
end_re = re.compile(r"^(\S+) INFO  worker: job '([^']+)' attempt (\d+) (wrote|failed)")
#  A fenced attempt ends when its worker gives it up ("... stopping job 'J'
#  attempt N (it will run again; it writes no results now)"): from then
#  on its runner writes nothing.
fence_re = re.compile(r"^(\S+) WARN  worker: .*stopping job '([^']+)' attempt (\d+) \(it will run again")
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
spans = collections.defaultdict(dict)
for host in hosts:
    for line in open("%s/%s.log" % (d, host), errors="replace"):
        m = start_re.match(line)
        if m:
            spans[m.group(2)][(host, m.group(3))] = [t(m.group(1)), None, None]
            continue
        m = end_re.match(line) or fence_re.match(line)
        if m and (host, m.group(3)) in spans[m.group(2)]:
            span = spans[m.group(2)][(host, m.group(3))]
            if span[1] is None:
                span[1] = t(m.group(1))
                span[2] = m.group(4) if m.re is end_re else "fenced"
    for runs in spans.values():
        for (h, att), span in runs.items():
            if h == host and span[1] is None:
                after = [k for k in kills[host] if k >= span[0]]
                if after:
                    span[1] = min(after)
attempts = overlaps = reruns = 0
for job, runs in sorted(spans.items()):
    items = sorted((s, e if e else float("inf"), k) for k, (s, e, how) in runs.items())
    #  An attempt that wrote its results on a host that stayed up ends the
    #  job: its worker reports it until the dispatcher (whichever) has it.
    wrote = [(e, k) for k, (s, e, how) in runs.items() if how == "wrote" and k[0] in survivors]
    if wrote:
        first = min(wrote)
        for s2, e2, k2 in items:
            if s2 > first[0]:
                reruns += 1
                print("rerun", job, "%s/%s" % first[1], first[0], "%s/%s" % k2, s2)
    attempts += len(items)
    #  Each attempt against the one that ends last among those before it.
    last = None
    for s2, e2, k2 in items:
        if last and s2 < last[1]:
            overlaps += 1
            print("overlap", job, "%s/%s" % last[2], last[0], last[1], "%s/%s" % k2, s2)
        if not last or e2 > last[1]:
            last = (s2, e2, k2)
print("attempts", attempts, "jobs", len(spans), "overlaps", overlaps, "reruns", reruns)
PY
}

#  pair_lan_start: on a LAN of namespaces a b c (netns.sh, already up) and
#  PostgreSQL at $PG_REMOTE, a failover pair a (primary) and b (backup)
#  with 2 workers each, and c, an HTTP front with 4 workers; every node at
#  log_level DEBUG, HTTP on its address port 6060, mesh on 6070. Logs in
#  $NODE_DIR/HOST.log, pids in HOST.pid. Extra [mesh] lines for a and b
#  in $PAIR_MESH_EXTRA. PAIR_WORKERS=c: only c runs the jobs. (A node
#  with a dispatcher always runs workers for its tasks' queues: a and b
#  then tag the tasks with queue idle, so that their workers wait there,
#  while pair_poster names queue default in every submission.)
pair_lan_start () {
    local h mesh conc sql
    mkdir -p "$NODE_DIR/sql" "$NODE_DIR/sql-idle"
    cat > "$NODE_DIR/sql-idle/pair.sql" <<'SQL'
-- name: quick
-- queue: idle
SELECT $1::int AS n FROM pg_sleep(0.05);

-- name: slow
-- queue: idle
SELECT $1::int AS n FROM pg_sleep(1.5);
SQL
    cat > "$NODE_DIR/sql/pair.sql" <<'SQL'
-- name: quick
SELECT $1::int AS n FROM pg_sleep(0.05);

-- name: slow
SELECT $1::int AS n FROM pg_sleep(1.5);
SQL
    PAIR_A="tcp://${NETNS_IP[a]}:6070"
    PAIR_B="tcp://${NETNS_IP[b]}:6070"
    for h in a b c; do
        case $h in
            a) mesh="bind = $PAIR_A
insecure = true
backup = $PAIR_B
${PAIR_MESH_EXTRA:-}"; conc=2 ;;
            b) mesh="bind = $PAIR_B
insecure = true
primary = $PAIR_A
${PAIR_MESH_EXTRA:-}"; conc=2 ;;
            c) mesh="dispatch = false
peers = $PAIR_A, $PAIR_B"; conc=4 ;;
        esac
        sql=$NODE_DIR/sql
        [ "${PAIR_WORKERS:-}" = c ] && [ $h != c ] && sql=$NODE_DIR/sql-idle
        cat > "$NODE_DIR/$h.ini" <<INI
[app]
worker_name = $h
server = ${NETNS_IP[$h]}:6060
sql_directory = $sql
data_dir = $NODE_DIR/data-$h
worker_concurrency = $conc
log_level = DEBUG
max_interruptions = 20
request_timeout = 10s
[mesh]
$mesh
[db.pg]
type = postgres
dsn = $PG_REMOTE
[results.pg]
type = postgres
dsn = $PG_REMOTE
unlogged = true
INI
        netns_exec $h "$DBT_BIN" --config "$NODE_DIR/$h.ini" >> "$NODE_DIR/$h.log" 2>&1 &
        echo $! > "$NODE_DIR/$h.pid"
    done
}

#  pair_role HOST: the failover role in HOST's /health ("none" outside a
#  pair, "down" when it does not answer), asked inside HOST's namespace so
#  that a host cut off still answers.
pair_role () {
    local r
    r=$(netns_exec "$1" curl -s -m 1 "http://${NETNS_IP[$1]}:6060/health" 2>/dev/null \
        | jq -r '.data.failover.role // "none"' 2>/dev/null)
    echo "${r:-down}"
}

#  pair_wait_roles SECONDS ROLE_A ROLE_B
pair_wait_roles () {
    local n=0
    while [ $n -lt $(($1 * 5)) ]; do
        [ "$(pair_role a)" = "$2" ] && [ "$(pair_role b)" = "$3" ] && return 0
        sleep 0.2; n=$((n + 1))
    done
    diag "roles: a $(pair_role a), b $(pair_role b); wanted $2, $3"
    return 1
}

#  pair_watch HOST OUT STOP: background, inside HOST's namespace; every
#  200 ms a line "MS ROLE" (ROLE as pair_role; the time is the middle of
#  the request) until the file STOP exists.
pair_watch () {
    netns_exec "$1" /usr/bin/python3 - "${NETNS_IP[$1]}" "$2" "$3" <<'PY' &
import sys, os, json, http.client, time
host, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
f, conn = open(out, "w", buffering=1), None
while not os.path.exists(stop):
    began = time.time()
    try:
        conn = conn or http.client.HTTPConnection(host, 6060, timeout=1)
        conn.request("GET", "/health")
        r = conn.getresponse(); body = r.read()
        role = (json.loads(body).get("data", {}).get("failover") or {}).get("role") or "none"
    except Exception:
        conn, role = None, "down"
    ended = time.time()
    f.write("%d %s\n" % ((began + ended) * 500, role))
    time.sleep(max(0, 0.2 - (ended - began)))
PY
}
