#!/bin/bash
#  lan.sh - the mesh across a LAN, emulated with network namespaces: one
#  dispatcher host (d) and two worker hosts (w1, w2), each with an HTTP
#  front and workers, on a bridge; PostgreSQL on the bridge's own address.
#  Every link loses 5% of its packets each way (nftables); mesh traffic
#  towards the dispatcher host crosses a forwarder that delays it 50 ms
#  each way (this kernel has no netem; tests/lib/delay_proxy.py). 1,000
#  jobs are posted round-robin through the three fronts while w1 is cut
#  off for 10 seconds (its link down). Afterwards every accepted job is
#  terminal, no job ran on two workers at once (attempt intervals from the
#  workers' logs), every replica equals the dispatcher's records, and the
#  partitioned host kept answering status reads (stale, and saying so).
#  Needs root (CI runs as root); skips elsewhere, fails under CI=true.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "root (network namespaces)" test "$(id -u)" = 0
need "ip netns" ip netns list
need "nft (apt-get install nftables)" command -v nft
need "jq" command -v jq
need "mdb_dump (apt-get install lmdb-utils)" command -v mdb_dump
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
node_dir

tag=$$
net=$((RANDOM % 200 + 20))
prefix="10.231.$net"
bridge="dbtbr$tag"
hosts="d w1 w2"
declare -A ip=([d]=$prefix.11 [w1]=$prefix.12 [w2]=$prefix.13)
ns () { echo "dbt$tag$1"; }
lan_cleanup () {
    local h
    for h in $hosts; do
        ip netns pids "$(ns $h)" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$(ns $h)" 2>/dev/null
    done
    ip link del "$bridge" 2>/dev/null
    node_cleanup
}
trap lan_cleanup EXIT

#  The LAN.
ip link add "$bridge" type bridge || bail "cannot create a bridge"
ip addr add "$prefix.1/24" dev "$bridge"
ip link set "$bridge" up
for h in $hosts; do
    n=$(ns $h)
    ip netns add "$n" || bail "cannot create namespace $n"
    ip link add "v$tag$h" type veth peer name "e$tag$h"
    ip link set "v$tag$h" master "$bridge" up
    ip link set "e$tag$h" netns "$n"
    ip netns exec "$n" ip link set lo up
    ip netns exec "$n" ip addr add "${ip[$h]}/24" dev "e$tag$h"
    ip netns exec "$n" ip link set "e$tag$h" up
    #  5% loss each way on the host's link.
    ip netns exec "$n" nft -f - <<NFT || bail "nft refused the loss rules"
table inet lossy {
    chain in { type filter hook input priority 0; iifname "e$tag$h" numgen random mod 100 < 5 drop; }
    chain out { type filter hook output priority 0; oifname "e$tag$h" numgen random mod 100 < 5 drop; }
}
NFT
done
#  PostgreSQL on the bridge, for everyone.
DBT_PG_LISTEN="127.0.0.1,$prefix.1" start_pg || bail "PostgreSQL did not start"
pg_remote="host=$prefix.1 port=$PG_PORT user=postgres dbname=testdb"
ok "the hosts reach the database across the bridge" \
    ip netns exec "$(ns w1)" timeout 5 bash -c "exec 3<>/dev/tcp/$prefix.1/$PG_PORT"

#  Mesh traffic from a worker host to the dispatcher host goes through the
#  50 ms forwarder in the worker host's namespace (its own connections,
#  marked, are let through).
for h in w1 w2; do
    ip netns exec "$(ns $h)" nft -f - <<NFT || bail "nft refused the redirect"
table ip delay {
    chain out { type nat hook output priority -100;
        meta mark != 0x1 ip daddr ${ip[d]} tcp dport 6070 dnat to 127.0.0.1:16070
        meta mark != 0x1 ip daddr ${ip[d]} tcp dport 6071 dnat to 127.0.0.1:16071
    }
}
NFT
    ip netns exec "$(ns $h)" /usr/bin/python3 "$top_srcdir/tests/lib/delay_proxy.py" --mark 1 \
        127.0.0.1:16070 "${ip[d]}:6070" 50 127.0.0.1:16071 "${ip[d]}:6071" 50 \
        >> "$NODE_DIR/proxy-$h.log" 2>&1 &
done

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/lan.sql" <<'SQL'
-- name: lan
-- queue: lan
SELECT $1::text AS tag, pg_sleep(0.1)::text AS slept;
SQL

peers="tcp://${ip[d]}:6070"
for h in $hosts; do
    if [ $h = d ]; then
        mesh="bind = tcp://${ip[d]}:6070
insecure = true
peers = $peers"
        conc=2
    else
        mesh="dispatch = false
peers = $peers"
        conc=4
    fi
    cat > "$NODE_DIR/$h.ini" <<INI
[app]
worker_name = $h
server = ${ip[$h]}:6060
sql_directory = $NODE_DIR/sql
data_dir = $NODE_DIR/data-$h
worker_concurrency = $conc
log_level = DEBUG
max_interruptions = 10
[mesh]
$mesh
[db.pg]
type = postgres
dsn = $pg_remote
[results.pg]
type = postgres
dsn = $pg_remote
INI
    ip netns exec "$(ns $h)" "$DBT_BIN" --config "$NODE_DIR/$h.ini" >> "$NODE_DIR/$h.log" 2>&1 &
    echo $! > "$NODE_DIR/$h.pid"
done
front_up () {
    local n=0
    while [ $n -lt 200 ]; do
        curl -s -m 2 "http://${ip[$1]}:6060/health" | jq -e '.status == "success"' >/dev/null 2>&1 && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
for h in $hosts; do ok "front of $h answers" front_up $h; done
replica_live () {
    local n=0
    while [ $n -lt 300 ]; do
        curl -s -m 2 "http://${ip[$1]}:6060/health" | jq -e '[.data.peers[]? | select(.up and .replica_lag_ms >= 0)] | length >= 1' >/dev/null 2>&1 && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
for h in w1 w2; do ok "$h replicates d" replica_live $h; done

#  1,000 jobs round-robin through the three fronts, 12 at a time; w1 is cut
#  off from 4 s to 14 s; meanwhile w1's own front is asked for a job's
#  status from inside w1.
/usr/bin/python3 - "$NODE_DIR/posted.txt" "${ip[d]}" "${ip[w1]}" "${ip[w2]}" <<'PY' &
import sys, json, http.client, threading, time
out, fronts = sys.argv[1], sys.argv[2:]
lock = threading.Lock()
jobs = list(range(1, 1001))
results = []
def worker():
    conns = {}
    while True:
        with lock:
            if not jobs:
                return
            n = jobs.pop(0)
        front = fronts[n % 3]
        body = json.dumps({"job_id": "lan%d" % n, "args": [str(n)]})
        status = "err"
        try:
            c = conns.get(front) or http.client.HTTPConnection(front, 6060, timeout=5)
            conns[front] = c
            c.request("POST", "/tasks/lan/jobs", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); status = r.status
        except Exception:
            conns.pop(front, None)
        with lock:
            results.append("lan%d %s %s" % (n, front, status))
threads = [threading.Thread(target=worker) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
open(out, "w").write("\n".join(results) + "\n")
PY
poster=$!
sleep 4
ip netns exec "$(ns w1)" ip link set "e${tag}w1" down
cut_at=$(date +%s%3N)
diag "w1 cut off"
: > "$NODE_DIR/stale.txt"
while [ $(( $(date +%s%3N) - cut_at )) -lt 10000 ]; do
    ip netns exec "$(ns w1)" curl -s -m 2 "http://${ip[w1]}:6060/jobs/lan3" \
        | jq -r '[.status, (.data.replica_lag_ms // "none")] | @tsv' >> "$NODE_DIR/stale.txt"
    sleep 1
done
ip netns exec "$(ns w1)" ip link set "e${tag}w1" up
diag "w1 back"
wait $poster
accepted=$(awk '$3 == 200' "$NODE_DIR/posted.txt" | wc -l)
diag "posted: $(wc -l < "$NODE_DIR/posted.txt"), accepted: $accepted, refused or unanswered: $(awk '$3 != 200' "$NODE_DIR/posted.txt" | wc -l)"
ok "most jobs were accepted" test "$accepted" -ge 600
served=$(awk -F'\t' '$1 == "success" && $2 > 1000' "$NODE_DIR/stale.txt" | wc -l)
diag "status reads on w1 during the cut: $(wc -l < "$NODE_DIR/stale.txt"), served stale (lag > 1 s): $served"
ok "w1 served status reads during the cut, marked stale" test "$served" -ge 3

#  Every accepted job ends; none twice at once. (One keep-alive client:
#  the links lose packets, and each new connection pays for it.)
/usr/bin/python3 - "$NODE_DIR/posted.txt" "${ip[d]}" <<'PY' > "$NODE_DIR/states.txt"
import sys, json, http.client, time
ids = [l.split()[0] for l in open(sys.argv[1]) if l.split()[2:3] == ["200"]]
left, states, conn = set(ids), {}, None
deadline = time.time() + 240
while left and time.time() < deadline:
    for job in sorted(left):
        try:
            conn = conn or http.client.HTTPConnection(sys.argv[2], 6060, timeout=5)
            conn.request("GET", "/jobs/" + job)
            r = conn.getresponse(); body = r.read()
            state = json.loads(body)["data"]["state"] if r.status == 200 else "missing"
        except Exception:
            conn, state = None, "unreachable"
        states[job] = state
        if state in ("SUCCESS", "FAILURE"):
            left.discard(job)
    if left:
        time.sleep(1)
for job in ids:
    print(job, states.get(job, "unknown"))
PY
is "$(awk '$2 != "SUCCESS" && $2 != "FAILURE"' "$NODE_DIR/states.txt" | wc -l)" 0 "every accepted job is terminal"
is "$(awk '$2 == "FAILURE"' "$NODE_DIR/states.txt" | wc -l)" 0 "none of them failed"
/usr/bin/python3 - "$NODE_DIR" <<'PY' > "$NODE_DIR/overlaps.txt"
import re, sys, datetime, collections
d = sys.argv[1]
start_re = re.compile(r"^(\S+) DEBUG worker: running job '([^']+)' attempt (\d+)")
end_re = re.compile(r"^(\S+) INFO  worker: job '([^']+)' attempt (\d+) (wrote|failed)")
#  A fenced attempt ends when its worker gives it up: from then on its
#  runner writes nothing (it may still wait for a reply the cut delays).
fence_re = re.compile(r"^(\S+) WARN  worker: dispatcher silent for \d+ ms, stopping job '([^']+)' attempt (\d+)")
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
spans = collections.defaultdict(dict)
for host in ("d", "w1", "w2"):
    for line in open("%s/%s.log" % (d, host), errors="replace"):
        m = start_re.match(line)
        if m:
            spans[m.group(2)][(host, m.group(3))] = [t(m.group(1)), None]
            continue
        m = end_re.match(line) or fence_re.match(line)
        if m and (host, m.group(3)) in spans[m.group(2)]:
            span = spans[m.group(2)][(host, m.group(3))]
            if span[1] is None:
                span[1] = t(m.group(1))
attempts = overlaps = 0
for job, runs in spans.items():
    items = sorted((s, e if e else float("inf"), k) for k, (s, e) in runs.items())
    attempts += len(items)
    for (s1, e1, k1), (s2, e2, k2) in zip(items, items[1:]):
        if s2 < e1:
            overlaps += 1
            print("overlap", job, k1, k2, s1, e1, s2)
print("attempts", attempts, "jobs", len(spans), "overlaps", overlaps)
PY
diag "$(tail -1 "$NODE_DIR/overlaps.txt")"
is "$(awk '/^attempts/ { print $6 }' "$NODE_DIR/overlaps.txt")" 0 "no job ran on two workers at once"
ok "some jobs were lost with w1 and ran again" grep -q "lost with worker 'w1/" "$NODE_DIR/d.log"

#  Replicas equal the dispatcher's records.
dump () { mdb_dump -s "$2" "$1" | sed '1,/^HEADER=END/d'; }
equal () {
    local h rdir
    for h in w1 w2; do
        rdir=$(ls -d "$NODE_DIR/data-$h/replica/d".* 2>/dev/null | head -1)
        [ -n "$rdir" ] || return 1
        cmp -s <(dump "$NODE_DIR/data-d" jobs) <(dump "$rdir" jobs) || return 1
        cmp -s <(dump "$NODE_DIR/data-d" groups) <(dump "$rdir" groups) || return 1
    done
}
ok "every replica equals the dispatcher's records" bash -c "$(declare -f dump equal); \
    NODE_DIR='$NODE_DIR'; hosts='$hosts'; for i in \$(seq 60); do equal && exit 0; sleep 0.5; done; exit 1"

for h in $hosts; do kill -TERM "$(cat "$NODE_DIR/$h.pid")" 2>/dev/null; done
sleep 1
done_testing
