#!/bin/bash
#  mesh.sh - three nodes on loopback, as on three hosts: alpha dispatches
#  queue q1 (and is the default dispatcher), beta dispatches q2, gamma has
#  only an HTTP front and workers. Every node answers for every job: a job
#  posted on any node for any queue runs, and its status, group, pending
#  list and results read the same on all three within a second; DELETE of
#  a pending and of a running job works from a node that does not own it
#  (the query stops on the server). gamma restarted with an empty data
#  directory catches up from snapshots; gamma stopped (SIGSTOP) while jobs
#  flow resynchronises; at the end every replica equals its dispatcher's
#  records (mdb_dump of the jobs and groups databases).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
need "mdb_dump (apt-get install lmdb-utils)" command -v mdb_dump
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/mesh.sql" <<'SQL'
-- name: one
-- queue: q1
SELECT $1::text AS tag, generate_series(1, $2::int) AS n;

-- name: two
-- queue: q2
SELECT $1::text AS tag, generate_series(1, $2::int) AS n;

-- name: nap
-- queue: q2
SELECT pg_sleep($1::float) AS slept;
SQL

a_mesh=$(free_port); b_mesh=$(free_port)
while [ $(( b_mesh > a_mesh ? b_mesh - a_mesh : a_mesh - b_mesh )) -le 2 ]; do    # +1 publish, +2 client
    b_mesh=$(free_port)
done
peers="tcp://127.0.0.1:$a_mesh, tcp://127.0.0.1:$b_mesh"
common="[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN"
node_config alpha <<INI
[app]
worker_name = alpha
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-alpha
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:$a_mesh
peers = $peers
heartbeat_interval = 300ms
[queue.q1]
dispatcher = tcp://127.0.0.1:$a_mesh
$common
INI
node_config beta <<INI
[app]
worker_name = beta
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-beta
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:$b_mesh
dispatcher = tcp://127.0.0.1:$a_mesh
peers = $peers
heartbeat_interval = 300ms
[queue.q2]
dispatcher = tcp://127.0.0.1:$b_mesh
$common
INI
node_config gamma <<INI
[app]
worker_name = gamma
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-gamma
worker_concurrency = 2
[mesh]
dispatch = false
peers = $peers
heartbeat_interval = 300ms
$common
INI
node_start alpha || bail "alpha did not start"
node_start beta || bail "beta did not start"
node_start gamma || bail "gamma did not start"
nodes="alpha beta gamma"

#  Every node has every other dispatcher's replica live.
replicas_live () {      # replicas_live NODE COUNT
    local port
    eval "port=\${${1}_HTTP}"
    local n=0
    while [ $n -lt 100 ]; do
        live=$(curl -s "http://127.0.0.1:$port/health" | jq '[.data.peers[]? | select(.up and .replica_lag_ms >= 0)] | length')
        [ "${live:-0}" -ge "$2" ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
ok "alpha replicates beta" replicas_live alpha 1
ok "beta replicates alpha" replicas_live beta 1
ok "gamma replicates alpha and beta" replicas_live gamma 2

#  on NODE METHOD PATH [BODY]: an api call to that node
on () { local node=$1; shift; node_use "$node"; api "$@"; }

#  seen_everywhere JOB STATE SECONDS: every node shows STATE; prints the
#  spread in ms between the first and the last node to show it.
seen_everywhere () {
    local job=$1 want=$2 limit=$3 start first="" last="" n node state
    start=$(date +%s%3N)
    declare -A seen=()
    while [ $(( $(date +%s%3N) - start )) -lt $((limit * 1000)) ]; do
        for node in $nodes; do
            [ -n "${seen[$node]:-}" ] && continue
            on "$node" GET "/jobs/$job"
            state=$(jfield .data.state 2>/dev/null)
            if [ "$state" = "$want" ]; then
                seen[$node]=$(date +%s%3N)
                [ -z "$first" ] && first=${seen[$node]}
            fi
        done
        [ ${#seen[@]} = 3 ] && { last=$(date +%s%3N); echo $((last - first)); return 0; }
        sleep 0.02
    done
    echo "job $job: only ${!seen[*]} saw $want" >&2
    return 1
}

#  1. A job posted on any node, for either queue, runs and reads the same
#  everywhere within a second.
spread_max=0
for node in $nodes; do
    for task in one two; do
        id="m_${node}_$task"
        on "$node" POST "/tasks/$task/jobs" "{\"job_id\":\"$id\",\"args\":[\"$node\",\"5\"]}"
        is "$STATUS" 200 "$task posted on $node"
        #  read-your-writes on the node that accepted it
        on "$node" GET "/jobs/$id"
        is "$STATUS" 200 "$node answers for $id at once"
        spread=$(seen_everywhere "$id" SUCCESS 30)
        ok "$id succeeds and every node says so" test -n "$spread"
        [ -n "$spread" ] && [ "$spread" -gt "$spread_max" ] && spread_max=$spread
    done
done
diag "largest delay between the first and the last node to show SUCCESS: ${spread_max} ms"
ok "every node shows a change within 1 s of the first" test "$spread_max" -le 1000
for node in $nodes; do
    on "$node" GET '/jobs/m_gamma_two/results?format=csv'
    is "$(printf '%s\n' "$BODY" | tail -n +2 | wc -l | tr -d ' ')" 5 "results of a beta job read on $node"
done
on gamma GET /jobs/m_alpha_two
is "$(jfield .data.dispatcher)" beta "a status says which dispatcher it came from"
like "$(jfield .data.replica_lag_ms)" '^[0-9]+$' "and how stale it may be"
on beta GET /jobs/m_alpha_two
is "$(jfield .data.replica_lag_ms)" 0 "the owning node answers from its own records"

#  2. A group (on q2) posted through gamma; its status on every node.
on gamma POST /groups '{"group_id":"mg","concurrency":1,"jobs":[
  {"task":"two","job_id":"mg1","args":["g","2"]},{"task":"two","job_id":"mg2","args":["g","3"]}]}'
is "$STATUS" 200 "a group posted on gamma"
for node in $nodes; do
    ok "group done as seen on $node" bash -c "for i in \$(seq 100); do \
        curl -s http://127.0.0.1:\$(eval echo \\\${${node}_HTTP})/groups/mg | jq -e '.data.state == \"SUCCESS\"' >/dev/null \
        && exit 0; sleep 0.1; done; exit 1"
done
on alpha POST /groups '{"jobs":[{"task":"one","job_id":"mx1","args":["x","1"]},{"task":"two","job_id":"mx2","args":["x","1"]}]}'
is "$STATUS" 421 "a group across two dispatchers is refused"
like "$(jfield .message)" "node 'beta'" "naming the node that owns the other queue"

#  3. A pending job (eta in an hour) on every node's pending list; DELETE
#  from a node that does not own it.
on gamma POST /tasks/one/jobs '{"job_id":"later","args":["l","1"],"eta":"2099-01-01 00:00:00"}'
is "$STATUS" 200 "a scheduled job posted on gamma"
for node in $nodes; do
    ok "pending on $node" bash -c "for i in \$(seq 50); do \
        curl -s http://127.0.0.1:\$(eval echo \\\${${node}_HTTP})/jobs/queue/q1 | jq -e '[.data[] | .ID] | index(\"later\")' >/dev/null \
        && exit 0; sleep 0.02; done; exit 1"
done
on beta DELETE /jobs/later
is "$STATUS" 200 "beta cancels alpha's pending job"
seen=$(seen_everywhere later FAILURE 5)
ok "every node sees it cancelled" test -n "$seen"

#  4. DELETE of a running job from a node that does not own it.
on alpha POST /tasks/nap/jobs '{"job_id":"sleeper","args":["60"]}'
is "$STATUS" 200 "a long job for beta's queue posted on alpha"
on beta GET /jobs/sleeper
ok "it runs" wait_state sleeper STARTED 15
running () { q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%' AND state = 'active'"; }
is "$(running)" 1 "its query runs on the server"
on gamma DELETE /jobs/sleeper
is "$STATUS" 200 "gamma cancels it"
ok "the query is gone from the server" bash -c "for i in \$(seq 50); do \
    [ \"\$(psql \"$PG_DSN\" -X -A -t -q -c \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%' AND state = 'active'\")\" = 0 ] && exit 0; sleep 0.1; done; exit 1"
seen=$(seen_everywhere sleeper FAILURE 10)
ok "every node sees it failed as cancelled" test -n "$seen"

#  Replicas equal their dispatchers: the jobs and groups databases, key
#  for key and value for value.
dump () { mdb_dump -s "$2" "$1" | sed '1,/^HEADER=END/d'; }
replica_dir () { ls -d "$NODE_DIR/data-$1/replica/$2".* 2>/dev/null | head -1; }
quiet () {      # wait until no job of the mesh is unfinished
    local n=0
    while [ $n -lt 300 ]; do
        on alpha GET /metrics
        printf '%s\n' "$BODY" | grep -v 'queue="parked"' \
            | grep -E '^dungbeetle_jobs\{.*state="(STARTED|PENDING|RETRY)"\} [1-9]' >/dev/null || return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
equal_replicas () {
    local node owner rdir
    for node in $nodes; do
        for owner in alpha beta; do
            [ "$node" = "$owner" ] && continue
            rdir=$(replica_dir "$node" "$owner")
            [ -n "$rdir" ] || { echo "no replica of $owner on $node" >&2; return 1; }
            for db in jobs groups; do
                if ! cmp -s <(dump "$NODE_DIR/data-$owner" $db) <(dump "$rdir" $db); then
                    echo "$node's replica of $owner differs in $db" >&2
                    return 1
                fi
            done
        done
    done
}
ok "no job is left unfinished" quiet
ok "replicas equal their dispatchers" bash -c "for i in \$(seq 30); do \
    $(declare -f dump replica_dir equal_replicas); nodes='$nodes'; NODE_DIR='$NODE_DIR'; \
    equal_replicas 2>/dev/null && exit 0; sleep 0.2; done; equal_replicas"

#  5. gamma restarted with an empty data directory catches up.
node_stop gamma
rm -rf "$NODE_DIR/data-gamma"
node_start gamma || bail "gamma did not restart"
ok "gamma is live again" replicas_live gamma 2
on gamma GET /jobs/m_alpha_one
is "$(jfield .data.state)" SUCCESS "gamma knows alpha's old jobs again"
on gamma GET /groups/mg
is "$(jfield .data.state)" SUCCESS "and beta's groups"

#  6. gamma stopped while jobs flow, then resumed.
kill -STOP "$(cat "$NODE_DIR/gamma.pid")"
for i in $(seq 100); do
    on alpha POST /tasks/one/jobs "{\"job_id\":\"flow$i\",\"queue\":\"parked\",\"args\":[\"f\",\"1\"]}"
done
is "$STATUS" 200 "jobs accepted while gamma is stopped"
on beta POST /tasks/two/jobs '{"job_id":"flow_b","args":["f","1"]}'
sleep 3
kill -CONT "$(cat "$NODE_DIR/gamma.pid")"
on gamma GET /jobs/flow100
ok "gamma catches up after SIGCONT" wait_state flow100 PENDING 10
ok "no job is left unfinished" quiet
ok "replicas equal their dispatchers afterwards" bash -c "for i in \$(seq 50); do \
    $(declare -f dump replica_dir equal_replicas); nodes='$nodes'; NODE_DIR='$NODE_DIR'; \
    equal_replicas 2>/dev/null && exit 0; sleep 0.2; done; equal_replicas"
diag "gamma's replica log: $(grep -c 'taking a snapshot' "$NODE_DIR/gamma.log") snapshots"

done_testing
