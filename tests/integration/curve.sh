#!/bin/bash
#  curve.sh - CURVE on the mesh. dungbeetle --new-keys writes key pairs;
#  two nodes sharing the mesh certificate work together (a job posted on
#  alpha's front for beta's queue runs on beta); a worker-only node with a
#  key outside [mesh] curve_allow is refused (alpha logs its address) and
#  gets no job, while one with an allowed key gets jobs; a zmq client
#  (python3-zmq) with an unknown key gets no answer and is logged, with an
#  allowed key it is answered; dungbeetle-client and dungbeetle_client.py
#  with keys submit and wait on alpha's client endpoint, and with an
#  unknown key (or a wrong server key) exit 2 and alpha logs it; tcpdump on loopback sees none of a job's
#  args or SQL with keys, and sees the args without them (so the check can
#  fail); a node refuses a non-loopback bind without keys, not with them.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "tcpdump (apt-get install tcpdump)" command -v tcpdump
need "root, for tcpdump" test "$(id -u)" = 0
need "python3-zmq with CURVE and python3-msgpack" /usr/bin/python3 -c \
    'import zmq, zmq.auth, msgpack; assert zmq.has("curve")'
node_dir
client_py="$top_srcdir/tests/lib/curve_client.py"

#  --------------------------------------------------------------------------
#  Keys
K="$NODE_DIR/keys"
mkdir -p "$K/allow"
for name in mesh worker stranger client badclient; do
    "$DBT_BIN" --new-keys "$K/$name" > "$NODE_DIR/newkeys.out" 2>&1 || diag "$(cat "$NODE_DIR/newkeys.out")"
done
ok "--new-keys writes NAME and NAME_secret" test -s "$K/mesh" -a -s "$K/mesh_secret"
is "$(stat -c %a "$K/mesh_secret")" "600" "the secret file is private"
ok "the public file holds no secret key" bash -c "! grep -q secret-key '$K/mesh'"
ok "the secret file holds it" grep -q secret-key "$K/mesh_secret"
is "$(grep public-key "$K/mesh")" "$(grep public-key "$K/mesh_secret")" "both hold the same public key"
ok "--new-keys refuses to overwrite keys" bash -c "! '$DBT_BIN' --new-keys '$K/mesh' 2>'$NODE_DIR/e' && grep -q 'exists already' '$NODE_DIR/e'"
ok "--new-keys takes no other flag" bash -c "! '$DBT_BIN' --new-keys '$K/x' --config /dev/null 2>/dev/null && [ ! -e '$K/x' ]"
cp "$K/worker" "$K/client" "$K/allow/"
key_of () { sed -n 's/.*public-key = "\(.*\)"/\1/p' "$1"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: marked
-- queue: qb
SELECT ? AS tag, 'SQLMARK5519' AS m;

-- name: slow
SELECT ? AS tag, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)
                  SELECT count(*) FROM c) AS n;
SQL

a_mesh=$(free_port); b_mesh=$(free_port)
while [ "$b_mesh" = "$a_mesh" ] || [ "$b_mesh" = $((a_mesh + 1)) ] || [ $((b_mesh + 1)) = "$a_mesh" ]; do
    b_mesh=$(free_port)
done
a_cli=$(free_port)
while [ "$a_cli" = "$a_mesh" ] || [ "$a_cli" = $((a_mesh + 1)) ] || [ "$a_cli" = "$b_mesh" ] \
      || [ "$a_cli" = $((b_mesh + 1)) ]; do
    a_cli=$(free_port)
done
peers="tcp://127.0.0.1:$a_mesh, tcp://127.0.0.1:$b_mesh"
keys="curve_cert = $K/mesh_secret
curve_allow = $K/allow"
db="[db.sample]
type = sqlite
dsn = @DIR@/sample.db
sample_data = true"
write_configs () {   # write_configs "KEY LINES": alpha and beta
    node_config alpha <<INI
[app]
worker_name = alpha
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-alpha
worker_concurrency = 1
[mesh]
bind = tcp://127.0.0.1:$a_mesh
client = tcp://127.0.0.1:$a_cli
peers = $peers
heartbeat_interval = 300ms
$1
$db
[results.res]
type = sqlite
dsn = @DIR@/results-alpha.db
INI
    node_config beta <<INI
[app]
worker_name = beta
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-beta
worker_concurrency = 1
[mesh]
bind = tcp://127.0.0.1:$b_mesh
dispatcher = tcp://127.0.0.1:$a_mesh
peers = $peers
heartbeat_interval = 300ms
$1
[queue.qb]
dispatcher = tcp://127.0.0.1:$b_mesh
$db
[results.res]
type = sqlite
dsn = @DIR@/results-beta.db
INI
}

#  capture_start FILE / capture_stop: tcpdump on loopback, the mesh ports.
capture_start () {
    CAPTURE=$1
    : > "$CAPTURE.err"
    tcpdump -i lo --immediate-mode -U -A -w "$CAPTURE" "tcp port $a_mesh or tcp port $((a_mesh + 1)) or tcp port $b_mesh or tcp port $((b_mesh + 1))" \
        2> "$CAPTURE.err" &
    CAPTURE_PID=$!
    local n=0
    while ! grep -q "listening on" "$CAPTURE.err" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}
capture_stop () {
    sleep 1
    kill "$CAPTURE_PID"; wait "$CAPTURE_PID" 2>/dev/null
}
packets () { tcpdump -r "$1" 2>/dev/null | wc -l; }

#  post_marked ID: a job on beta's queue, posted on alpha; waits for it.
post_marked () {
    node_use alpha
    api POST /tasks/marked/jobs "{\"job_id\":\"$1\",\"args\":[\"ARGMARK7731\"]}"
    [ "$STATUS" = 200 ] || diag "POST: $STATUS $BODY"
    wait_state "$1" SUCCESS 20
}

#  --------------------------------------------------------------------------
#  Two nodes with keys
write_configs "$keys"
node_start alpha || bail "alpha did not start"
node_start beta || bail "beta did not start"
ok "alpha says its mesh uses CURVE and names its key" \
    grep -qF "curve: mesh sockets use CURVE; this node's key $(key_of "$K/mesh")" "$NODE_DIR/alpha.log"
capture_start "$NODE_DIR/keyed.pcap"
ok "a job posted on alpha for beta's queue succeeds over CURVE" post_marked k1
capture_stop
ok "it ran on beta" grep -q "worker: job 'k1' attempt 1 wrote 1 rows" "$NODE_DIR/beta.log"
ok "the capture holds the mesh traffic (over 20 packets)" test "$(packets "$NODE_DIR/keyed.pcap")" -gt 20
ok "no job args in clear on the wire" bash -c "! grep -aq ARGMARK7731 '$NODE_DIR/keyed.pcap'"
ok "no task SQL or name in clear on the wire" bash -c "! grep -aqE 'SQLMARK5519|marked' '$NODE_DIR/keyed.pcap'"

#  --------------------------------------------------------------------------
#  zmq clients
out=$("$client_py" "tcp://127.0.0.1:$b_mesh" "$K/client_secret" "$K/mesh" STATUS k1)
is "$?" "0" "a zmq client with an allowed key is answered"
is "$(printf '%s' "$out" | jq -r '.code, .data.state, .data.id' | tr '\n' ' ')" "200 2 k1 " "with the job's record (state 2, SUCCESS)"
out=$("$client_py" "tcp://127.0.0.1:$a_mesh" "$K/badclient_secret" "$K/mesh")
is "$?" "2" "a zmq client with an unknown key gets no answer"
bad=$(key_of "$K/badclient")
ok "alpha logs the refused client with its address and key" \
    grep -qF "refused a connection to the dispatcher socket from 127.0.0.1: its key is not in [mesh] curve_allow (key $bad)" \
    "$NODE_DIR/alpha.log"

#  --------------------------------------------------------------------------
#  dungbeetle-client (libdungbeetle) and dungbeetle_client.py with keys, on
#  alpha's client endpoint.
CLI="${top_builddir:-.}/tools/dungbeetle-client"
PY="$top_srcdir/tools/dungbeetle_client.py"
CE="tcp://127.0.0.1:$a_cli"
for tool in cli py; do
    if [ $tool = cli ]; then T=$CLI; else T=$PY; fi
    E="$NODE_DIR/$tool.err"
    out=$("$T" --endpoint "$CE" --client-cert "$K/client_secret" --server-key "$K/mesh" \
          submit marked "T$tool" --id "c$tool" --wait 2>"$E")
    is "$?" 0 "$tool: with an allowed key, submit --wait succeeds over CURVE" || diag "$(cat "$E")"
    like "$out" "c$tool SUCCESS rows=1" "$tool: and reports the job's end"
    out=$("$T" --endpoint "$CE" --client-cert "$K/client_secret" --server-key "$K/mesh" \
          tasks 2>"$E")
    like "$out" "marked.qb" "$tool: the task list comes back over CURVE"
    out=$(DUNGBEETLE_CLIENT_CERT="$K/client" DUNGBEETLE_SERVER_KEY="$(key_of "$K/mesh")" \
          "$T" --endpoint "$CE" status "c$tool" 2>"$E")
    is "$?" 0 "$tool: keys from the environment, the server key as Z85 text" || diag "$(cat "$E")"
    like "$out" "state: SUCCESS" "$tool: status answered"
    "$T" --endpoint "$CE" --client-cert "$K/badclient_secret" --server-key "$K/mesh" \
         --timeout 5000 status "c$tool" > /dev/null 2>"$E"
    is "$?" 2 "$tool: an unknown client key is refused (exit 2)"
    like "$(cat "$E")" "refused this client's CURVE key" "$tool: and says so"
    "$T" --endpoint "$CE" --client-cert "$K/client_secret" --server-key "$K/stranger" \
         --timeout 5000 status "c$tool" > /dev/null 2>"$E"
    is "$?" 2 "$tool: a wrong server key fails the handshake (exit 2)"
    like "$(cat "$E")" "CURVE handshake with .* failed" "$tool: and says so"
    "$T" --endpoint "$CE" --timeout 1500 status "c$tool" > /dev/null 2>"$E"
    is "$?" 4 "$tool: without keys a CURVE node does not answer (exit 4)"
    "$T" --endpoint "$CE" --client-cert "$K/nothing" --server-key "$K/mesh" status "c$tool" \
         > /dev/null 2>"$E"
    is "$?" 2 "$tool: a missing client cert is a usage error"
    like "$(cat "$E")" "client certificate: cannot load" "$tool: naming the file"
    "$T" --endpoint "$CE" --client-cert "$K/client_secret" status "c$tool" > /dev/null 2>"$E"
    is "$?" 2 "$tool: a client cert without a server key is a usage error"
    "$T" --endpoint "$CE" --client-cert "$K/mesh" --server-key "$K/mesh" status "c$tool" \
         > /dev/null 2>"$E"
    is "$?" 0 "$tool: a cert given as NAME finds NAME_secret beside it"
done
#  libdungbeetle with the key pair as Z85 text (tests/curve_keys_client.c).
KC="${top_builddir:-.}/tests/curve_keys_client"
secret_of () { sed -n 's/.*secret-key = "\(.*\)"/\1/p' "$1"; }
out=$("$KC" "$CE" "$(key_of "$K/client")" "$(secret_of "$K/client_secret")" "$(key_of "$K/mesh")" ccli 2>"$NODE_DIR/kc.err")
is "$?" 0 "libdungbeetle: a key pair as Z85 text is answered (bad key options refused first)" || diag "$(cat "$NODE_DIR/kc.err")"
is "$out" "SUCCESS" "libdungbeetle: with the job's state"
"$KC" "$CE" "$(key_of "$K/badclient")" "$(secret_of "$K/badclient_secret")" "$K/mesh" ccli 2>"$NODE_DIR/kc.err"
is "$?" 2 "libdungbeetle: an unknown key pair is DUNGBEETLE_EAUTH"
ok "alpha logs the refused clients on its client socket, with address and key" \
    grep -qF "refused a connection to the client socket from 127.0.0.1: its key is not in [mesh] curve_allow (key $bad)" \
    "$NODE_DIR/alpha.log"

sleep 1; cp "$K/badclient" "$K/allow/"
out=$("$client_py" "tcp://127.0.0.1:$a_mesh" "$K/badclient_secret" "$K/mesh")
is "$?" "0" "once its cert is put in curve_allow, the same client is answered (no restart)"
rm "$K/allow/badclient"
out=$("$client_py" "tcp://127.0.0.1:$a_mesh" "$K/client_secret" "$K/stranger")
is "$?" "2" "a client that expects another server key gets no answer"

#  --------------------------------------------------------------------------
#  Worker-only nodes: an unknown key gets no job, an allowed one does.
start_worker () {    # start_worker NAME CERT
    cat > "$NODE_DIR/$1.ini" <<INI
[app]
worker_name = $1
sql_directory = $NODE_DIR/sql
data_dir = $NODE_DIR/data-$1
worker_concurrency = 2
worker_only = true
[mesh]
dispatcher = tcp://127.0.0.1:$a_mesh
curve_cert = $2
curve_server = $K/mesh
heartbeat_interval = 300ms
[db.sample]
type = sqlite
dsn = $NODE_DIR/sample.db
[results.res]
type = sqlite
dsn = $NODE_DIR/results-alpha.db
INI
    "$DBT_BIN" --config "$NODE_DIR/$1.ini" >> "$NODE_DIR/$1.log" 2>&1 &
    echo $! > "$NODE_DIR/$1.pid"
}
ran () { grep -cE "worker: job '.*' attempt [0-9]+ wrote" "$NODE_DIR/$1.log"; }
#  Jobs a node's workers were handed (ran, or handed back).
got () { grep -cE "worker: job '.*' attempt [0-9]+ wrote|worker: no free runner for job" "$NODE_DIR/$1.log"; }
start_worker intruder "$K/stranger_secret"
stranger=$(key_of "$K/stranger")
ok "alpha logs the refused worker with its address and key" bash -c "for i in \$(seq 50); do \
    grep -qF 'from 127.0.0.1: its key is not in [mesh] curve_allow (key $stranger)' '$NODE_DIR/alpha.log' && exit 0; \
    sleep 0.1; done; exit 1"
node_use alpha
for i in 1 2 3; do api POST /tasks/slow/jobs "{\"job_id\":\"s$i\",\"args\":[\"$i\"]}"; done
for i in 1 2 3; do wait_state "s$i" SUCCESS 30 || break; done
is "$(got intruder)" "0" "the refused worker gets no job"
is "$(( $(ran alpha) + $(ran beta) ))" "6" "the full nodes ran them all (and k1, ccli, cpy)"
ok "the refused worker never registered" bash -c "! grep -q \"(intruder) registered\" '$NODE_DIR/alpha.log'"
node_stop intruder

start_worker helper "$K/worker_secret"
ok "a worker with an allowed key registers" bash -c "for i in \$(seq 50); do \
    grep -q '(helper) registered' '$NODE_DIR/alpha.log' && exit 0; sleep 0.1; done; exit 1"
for i in 4 5 6 7 8 9; do api POST /tasks/slow/jobs "{\"job_id\":\"s$i\",\"args\":[\"$i\"]}"; done
for i in 4 5 6 7 8 9; do wait_state "s$i" SUCCESS 30 || break; done
ok "and gets jobs" test "$(got helper)" -gt 0
node_stop helper

#  --------------------------------------------------------------------------
#  A non-loopback bind: refused without keys, allowed with them.
open_port=$(free_port)
open_config () {     # open_config "KEY LINES": a node binding every address
    node_config open <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-open
[mesh]
bind = tcp://0.0.0.0:$open_port
publish = tcp://0.0.0.0:$((open_port + 1))
$1
[db.sample]
type = sqlite
dsn = @DIR@/sample.db
[results.res]
type = sqlite
dsn = @DIR@/results-open.db
INI
}
open_config ""
ok "without keys a node refuses to bind a non-loopback mesh endpoint" bash -c \
    "! timeout 10 '$DBT_BIN' --config '$NODE_DIR/open.ini' 2>'$NODE_DIR/open.err' && grep -q 'not a loopback' '$NODE_DIR/open.err'"
open_config "curve_cert = $K/mesh_secret"
ok "with keys it binds one" node_start open
node_stop open
open_config "curve_cert = $K/nothing"
ok "a missing curve_cert stops start-up with a clear error" bash -c \
    "! timeout 10 '$DBT_BIN' --config '$NODE_DIR/open.ini' 2>'$NODE_DIR/open.err' && grep -q 'curve_cert: cannot load' '$NODE_DIR/open.err'"
open_config "curve_cert = $K/mesh"
ok "a curve_cert without its secret file is refused" bash -c \
    "mv '$K/mesh_secret' '$K/mesh_moved'; ! timeout 10 '$DBT_BIN' --config '$NODE_DIR/open.ini' 2>'$NODE_DIR/open.err'; \
     rc=\$?; mv '$K/mesh_moved' '$K/mesh_secret'; [ \$rc = 0 ] && grep -q 'no secret key' '$NODE_DIR/open.err'"

#  --------------------------------------------------------------------------
#  Without keys the same job crosses the wire in clear.
node_stop beta
node_stop alpha
write_configs ""
node_start alpha || bail "alpha did not start without keys"
node_start beta || bail "beta did not start without keys"
capture_start "$NODE_DIR/open.pcap"
ok "without keys the job succeeds too" post_marked k2
capture_stop
ok "and tcpdump sees its args in clear (so the check above can fail)" grep -aq ARGMARK7731 "$NODE_DIR/open.pcap"
out=$("$client_py" "tcp://127.0.0.1:$a_mesh" "$K/client_secret" "$K/mesh")
is "$?" "2" "a CURVE client gets no answer from a node without keys"
node_stop beta
node_stop alpha

done_testing
