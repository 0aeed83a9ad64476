#!/bin/bash
#  handback.sh - a worker with one runner that is sent a second job while
#  the first still runs hands it back at once with DONE refused (and
#  interrupted, for older dispatchers), and never tells that refusal
#  again: not in READY's "finished", not among the outcomes it repeats
#  after a reconnect (the dispatcher may give that attempt number again).
#  The dispatcher here is a Python ROUTER speaking the worker protocol to
#  a real worker-only node; the dispatcher's side of the hand-back (no
#  attempt or interruption counted, no tight loop) is in its self test.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "python3 with zmq and msgpack" /usr/bin/python3 -c 'import zmq, msgpack'
node_dir

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/t.sql" <<'SQL'
-- name: slow
SELECT ? AS tag, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 6000000)
                  SELECT count(*) FROM c) AS n;
SQL
mesh=$(free_port)
cat > "$NODE_DIR/w.ini" <<INI
[app]
worker_name = w
sql_directory = $NODE_DIR/sql
data_dir = $NODE_DIR/data-w
worker_concurrency = 1
worker_only = true
log_level = DEBUG
[mesh]
dispatcher = tcp://127.0.0.1:$mesh
heartbeat_interval = 1s
[db.src]
type = sqlite
dsn = $NODE_DIR/src.db
sample_data = true
[results.res]
type = sqlite
dsn = $NODE_DIR/res.db
INI

/usr/bin/python3 - "$mesh" "$DBT_BIN" "$NODE_DIR" <<'PY' > "$NODE_DIR/peer.out" 2> "$NODE_DIR/peer.err"
import sys, time, subprocess, zmq, msgpack
port, binary, d = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
r = ctx.socket(zmq.ROUTER)
r.bind("tcp://127.0.0.1:%s" % port)
log = open(d + "/w.log", "ab")
p = subprocess.Popen([binary, "--config", d + "/w.ini"], stdout=log, stderr=log)
open(d + "/w.pid", "w").write(str(p.pid))
def send(ident, cmd, body):
    r.send_multipart([ident, b"DBTW01", bytes([cmd]), msgpack.packb(body)])
def recv(until):
    """Next worker message before the deadline, heartbeating the worker."""
    while time.time() < until:
        if r.poll(100):
            f = r.recv_multipart()
            return f[0], f[2][0], msgpack.unpackb(f[3]) if len(f) > 3 else {}
        if ident:
            send(ident, 0x14, {"instance": "peer"})
    return None, None, None
ident = None
deadline = time.time() + 20
while not ident and time.time() < deadline:
    i, cmd, body = recv(deadline)
    if cmd == 0x10:
        ident, queue = i, body["queues"][0]
        print("ready capacity", body["capacity"])
if not ident:
    sys.exit("the worker did not register")
def job(jid):
    return {"id": jid, "task": "slow", "queue": queue, "args": [jid], "db": "src", "results": "res",
            "table": "results_" + jid,
            "state": 1, "attempts": 1}
send(ident, 0x20, job("j1"))
send(ident, 0x20, job("j2"))
dones, readys = [], []
asked_again = False
deadline = time.time() + 30
while time.time() < deadline:
    i, cmd, body = recv(deadline)
    if cmd == 0x13:
        dones.append(body)
        print("done", body["id"], "ok=%s refused=%s interrupted=%s again=%s" % (
            body.get("ok"), body.get("refused", False), body.get("interrupted", False),
            body.get("again", False)))
        if body["id"] == "j2" and not asked_again:
            send(ident, 0x23, {"reason": "register again"})    # as an unknowing dispatcher does
            asked_again = True
        if body["id"] == "j1" and body.get("ok"):
            break
    elif cmd == 0x10:
        readys.append(body)
        print("ready again finished", ",".join(sorted(f["id"] for f in body.get("finished", []))),
              "running", ",".join(sorted(x["id"] for x in body.get("running", []))))
# One more reconnect after j1 finished: its outcome is told again, j2's refusal is not.
send(ident, 0x23, {"reason": "register again"})
deadline = time.time() + 5
while time.time() < deadline:
    i, cmd, body = recv(deadline)
    if cmd == 0x13:
        print("done", body["id"], "ok=%s refused=%s interrupted=%s again=%s" % (
            body.get("ok"), body.get("refused", False), body.get("interrupted", False),
            body.get("again", False)))
        if body["id"] == "j1":
            break
    elif cmd == 0x10:
        print("ready again finished", ",".join(sorted(f["id"] for f in body.get("finished", []))),
              "running", ",".join(sorted(x["id"] for x in body.get("running", []))))
p.terminate()
p.wait(10)
PY
diag "$(tr '\n' ';' < "$NODE_DIR/peer.out")"
is "$(grep -c '^ready capacity 1$' "$NODE_DIR/peer.out")" 1 "the worker registers with one runner"
is "$(grep -c '^done j2 ok=False refused=True interrupted=True again=False$' "$NODE_DIR/peer.out")" 1 \
    "the job sent while its runner is busy comes back at once, refused (and interrupted)"
ok "and its log says so" grep -q "no free runner for job 'j2'" "$NODE_DIR/w.log"
ok "the running job goes on and succeeds" grep -q '^done j1 ok=True refused=False interrupted=False again=False$' "$NODE_DIR/peer.out"
is "$(grep -c '^ready again' "$NODE_DIR/peer.out")" 2 "it registers again when asked, twice"
ok "its first READY again lists j1 running" grep -q '^ready again finished  running j1$' "$NODE_DIR/peer.out"
ok "its second READY lists j1 finished, not j2" grep -q '^ready again finished j1 running $' "$NODE_DIR/peer.out"
is "$(grep -c '^done j1 ok=True refused=False interrupted=False again=True$' "$NODE_DIR/peer.out")" 1 \
    "after the second it tells j1's outcome again"
is "$(grep -c '^done j2' "$NODE_DIR/peer.out")" 1 "and never the refusal of j2"
ok "no job ran twice there" test "$(grep -c "worker: running job 'j1'" "$NODE_DIR/w.log")" = 1
done_testing
