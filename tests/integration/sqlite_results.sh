#!/bin/bash
#  sqlite_results.sh - SQLite results under load, one file per table:
#  3,000 one-row jobs through a node with 16 runners all succeed (the one
#  shared file used to fail some with "database is locked"), a sample reads
#  back over HTTP (JSON, CSV, paged) and with the sqlite3 CLI, job ids that
#  differ only in case get separate tables, purge removes the file, and a
#  kill -9 in mid-write leaves the previous complete table, never a
#  partial one; after a restart the job completes.
#  Environment: SQLITE_RESULTS_JOBS (default 3000).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "sqlite3 command-line tool" command -v sqlite3
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
jobs=${SQLITE_RESULTS_JOBS:-3000}

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: one
SELECT CAST (?1 AS INTEGER) AS n, 'row ' || ?1 AS label, ?1 * 0.5 AS half;

-- name: slow_one
SELECT CAST (?1 AS INTEGER) AS n, 'row ' || ?1 AS label, ?1 * 0.5 AS half
WHERE (WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
       SELECT count(*) FROM c) > 0;

-- name: numbers
WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < CAST (? AS INTEGER))
SELECT x, printf ('%08d', x) AS s FROM c;
SQL
node_config a <<'INI'
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 16
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.sample]
type = sqlite
dsn = @DIR@/sample.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/results.db
INI
node_start a || bail "node did not start"
results=$NODE_DIR/results.db
tables=$results.d

#  load.py: submit, wait for and check many jobs over HTTP (keep-alive).
cat > "$NODE_DIR/load.py" <<'PY'
import http.client, json, os, sqlite3, sys, threading, time
def conn(port):
    return http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
def call(c, method, path, body=None):
    c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    return r.status, r.read()
def want(i):
    return [i, "row %d" % i, i * 0.5]
def submit(port, prefix, n, task):
    refused = []
    def part(k):
        c = conn(port)
        for i in range(k, n, 8):
            body = json.dumps({"job_id": "%s%d" % (prefix, i), "args": [str(i)]})
            if call(c, "POST", "/tasks/%s/jobs" % task, body)[0] != 200:
                refused.append(i)
    threads = [threading.Thread(target=part, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("refused=%d" % len(refused))
def wait(port, prefix, n, secs):
    c, start, left, states, bad, errors = conn(port), time.time(), set(range(n)), {}, 0, set()
    while left and time.time() - start < secs:
        for i in sorted(left):
            data = json.loads(call(c, "GET", "/jobs/%s%d" % (prefix, i))[1])["data"]
            if data["state"] in ("SUCCESS", "FAILURE"):
                left.discard(i)
                states[data["state"]] = states.get(data["state"], 0) + 1
                bad += data["state"] == "SUCCESS" and data["count"] != 1
                if data["error"]:
                    errors.add(data["error"])
        if left:
            time.sleep(0.5)
    took = time.time() - start
    print("success=%d failure=%d unfinished=%d bad_count=%d secs=%.1f"
          % (states.get("SUCCESS", 0), states.get("FAILURE", 0), len(left), bad, took))
    for e in sorted(errors)[:5]:
        print("error=%s" % e)
def sample(port, prefix, n):
    c, wrong = conn(port), 0
    picks = sorted(set([0, n - 1] + list(range(7, n, max(1, n // 25)))))
    for i in picks:
        body = call(c, "GET", "/jobs/%s%d/results" % (prefix, i))[1]
        data = json.loads(body)["data"]
        if [col["name"] for col in data["columns"]] != ["n", "label", "half"] or data["rows"] != [want(i)]:
            wrong += 1
            print("json %s%d: %s" % (prefix, i, body[:200]))
        body = call(c, "GET", "/jobs/%s%d/results?format=csv" % (prefix, i))[1]
        half = "%d" % (i // 2) if i % 2 == 0 else repr(i * 0.5)
        if body.decode() != "n,label,half\r\n%d,row %d,%s\r\n" % (i, i, half):
            wrong += 1
            print("csv %s%d: %r" % (prefix, i, body[:200]))
    print("sampled=%d wrong=%d" % (len(picks), wrong))
def files(tables, prefix, n):
    present, broken = 0, 0
    for i in range(n):
        path = os.path.join(tables, "results_%s%d.db" % (prefix, i))
        if not os.path.exists(path):
            continue
        present += 1
        try:
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
            if db.execute("SELECT * FROM results_%s%d" % (prefix, i)).fetchall() != [tuple(want(i))]:
                broken += 1
            db.close()
        except sqlite3.Error:
            broken += 1
    print("present=%d broken=%d" % (present, broken))
command, args = sys.argv[1], sys.argv[2:]
{"submit": lambda: submit(args[0], args[1], int(args[2]), args[3]),
 "wait": lambda: wait(args[0], args[1], int(args[2]), float(args[3])),
 "sample": lambda: sample(args[0], args[1], int(args[2])),
 "files": lambda: files(args[0], args[1], int(args[2]))}[command]()
PY
load () {   # load COMMAND ARGS...: run load.py, its output into $LOAD (and as comments)
    LOAD=$(/usr/bin/python3 "$NODE_DIR/load.py" "$@")
    printf '%s\n' "$LOAD" | sed 's/^/# /'
}
field () {  # field NAME: NAME=value from $LOAD
    printf '%s\n' "$LOAD" | sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" | head -1
}

#  --- Many jobs, 16 runners: none fails.
load submit "$a_HTTP" m "$jobs" one
is "$(field refused)" "0" "all $jobs jobs accepted"
load wait "$a_HTTP" m "$jobs" 600
is "$(field success)" "$jobs" "all $jobs jobs succeeded with 16 runners"
is "$(field failure)" "0" "no job failed"
is "$(field bad_count)" "0" "every job reports its one row"
is "$(grep -c 'database is locked' "$NODE_DIR/a.log")" "0" "no 'database is locked' in the log"
load sample "$a_HTTP" m "$jobs"
is "$(field wrong)" "0" "a sample of $(field sampled) tables reads back right as JSON and CSV"
is "$(ls "$tables" | grep -c '^results_m[0-9]*\.db$')" "$jobs" "one file per results table"
is "$(ls -A "$tables/.tmp" | wc -l)" "0" "no staging file left behind"
is "$(sqlite3 "$results" 'SELECT count(*) FROM sqlite_master')" "0" \
   "the results file itself holds no tables"
mid=$((jobs / 2))
is "$(sqlite3 -separator '|' "$(sqlite_table_file "$results" "results_m$mid")" \
      "SELECT * FROM results_m$mid")" "$mid|row $mid|$((mid / 2))$( [ $((mid % 2)) = 1 ] && echo .5 || echo .0)" \
   "the sqlite3 CLI reads a job's table from its file"

#  --- Paged read-back of a larger table.
api POST /tasks/numbers/jobs '{"job_id":"pages","args":["2500"]}'
ok "a 2,500-row job succeeds" wait_state pages SUCCESS 30
api GET '/jobs/pages/results?limit=3&offset=1000'
is "$(jfield '.data.rows | map(.[0]) | join(",")')" "1001,1002,1003" "limit and offset page the JSON"
api GET '/jobs/pages/results?format=csv&limit=2&offset=2498'
is "$BODY" "$(printf 'x,s\r\n2499,00002499\r\n2500,00002500\r')" "the last CSV page"
api GET '/jobs/pages/results'
is "$(jfield '.data.rows | length')" "2500" "the whole table reads back"

#  --- Ids that differ only in case: never one table. While CaseA keeps
#  its table, casea is refused (on every backend); once CaseA is purged,
#  casea gets a file of its own name (the file names never differ by case
#  alone either).
api POST /tasks/one/jobs '{"job_id":"CaseA","args":["1"]}'
ok "job CaseA succeeds" wait_state CaseA SUCCESS 20
api POST /tasks/one/jobs '{"job_id":"casea","args":["2"]}'
is "$STATUS" 409 "casea is refused while CaseA keeps its table"
api GET /jobs/CaseA/results
is "$(jfield '.data.rows[0][0]')" "1" "CaseA reads its own row"
ok "CaseA has its own file" test -f "$tables/results_+case+a.db"
is "$(sqlite3 "$(sqlite_table_file "$results" results_CaseA)" 'SELECT label FROM results_CaseA')" \
   "row 1" "the CLI finds CaseA's table"
api POST /tasks/one/jobs '{"job_id":"other","args":["3"]}'
ok "job other succeeds" wait_state other SUCCESS 20

#  --- Purge removes the table's file, and frees the name.
api DELETE '/jobs/CaseA?purge=true'
is "$STATUS" 200 "purge of a finished job"
n=0
while [ -e "$tables/results_+case+a.db" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ok "purge removed CaseA's file" test ! -e "$tables/results_+case+a.db"
ok "other's file stays" test -f "$tables/results_other.db"
api GET /jobs/CaseA
is "$STATUS" 404 "the purged job is forgotten"
api POST /tasks/one/jobs '{"job_id":"casea","args":["2"]}'
is "$STATUS" 200 "casea is accepted once CaseA is gone"
ok "job casea succeeds" wait_state casea SUCCESS 20
api GET /jobs/casea/results
is "$(jfield '.data.rows[0][0]')" "2" "casea reads its own row"
ok "casea has its own file" test -f "$tables/results_casea.db"
api GET /jobs/other/results
is "$(jfield '.data.rows[0][0]')" "3" "other still reads back"

#  --- kill -9 under load: every table file is complete, and after the
#  restart every job finishes, none with "database is locked".
load submit "$a_HTTP" k 1000 slow_one
node_stop a KILL
load files "$tables" k 1000
diag "killed with $(field present) of 1000 tables written"
is "$(field broken)" "0" "after kill -9 every table file is complete"
node_start a || bail "node did not restart"
load wait "$a_HTTP" k 1000 120
is "$(field success)" "1000" "after the restart all 1000 jobs succeed within 120 s"
is "$(grep -c 'database is locked' "$NODE_DIR/a.log")" "0" "still no 'database is locked' in the log"

#  --- kill -9 in mid-write: the previous complete table stays, then the
#  re-run completes after the restart.
big=$(sqlite_table_file "$results" results_big)
api POST /tasks/numbers/jobs '{"job_id":"big","args":["10"]}'
ok "a first, small run of job big succeeds" wait_state big SUCCESS 20
api POST /tasks/numbers/jobs '{"job_id":"big","args":["3000000"]}'
is "$STATUS" 200 "the big re-run is accepted"
n=0
while [ "$(ls -A "$tables/.tmp" | wc -l)" = 0 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
sleep 0.5
is "$(ls -A "$tables/.tmp" | wc -l)" "1" "the re-run writes a staging file"
node_stop a KILL
is "$(sqlite3 "$big" 'SELECT count(*), max(x) FROM results_big')" "10|10" \
   "after kill -9 the table is the previous complete one"
ok "the staging file is not a table file" test "$(ls "$tables" | grep -c big)" = 1
node_start a || bail "node did not restart"
ok "the big job runs again to SUCCESS" wait_state big SUCCESS 120
is "$(jfield .data.count)" "3000000" "the big job reports every row"
is "$(sqlite3 "$big" 'SELECT count(*), sum(x), max(s) FROM results_big')" \
   "3000000|4500001500000|03000000" "its table is complete"
is "$(ls -A "$tables/.tmp" | wc -l)" "0" "the crashed attempt's staging file was swept"
api GET /jobs/m0/results
is "$(jfield '.data.rows[0][1]')" "row 0" "tables written before the crash read back"

done_testing
