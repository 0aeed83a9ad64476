#!/bin/bash
#  diskfull.sh - the node's data_dir and its SQLite results on a small tmpfs
#  that fills up while clients submit: submissions are refused with 507
#  (nothing acknowledged is lost), reads go on, and once space returns the
#  node accepts jobs again without a restart. Needs root (mount).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/load.sh"
need "jq" command -v jq
need "root, to mount a tmpfs" test "$(id -u)" = 0
need "the load generator (make check builds tests/dbt_loadgen)" test -x "$LOADGEN"
node_dir
DISK=$(mktemp -d /tmp/dbt-disk.XXXXXX)
trap 'node_cleanup; umount "$DISK" 2>/dev/null; rmdir "$DISK"' EXIT
need "a tmpfs mount" mount -t tmpfs -o size=24m dbt-diskfull "$DISK"

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/rows.sql" <<'SQL'
-- name: rows
WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < CAST (? AS INTEGER))
SELECT n, printf ('%0200d', n) AS pad FROM c;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = $DISK/data
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.src]
type = sqlite
dsn = @DIR@/src.db
sample_data = true
[results.res]
type = sqlite
dsn = $DISK/results.db
INI
node_start a || bail "node did not start"

api POST /tasks/rows/jobs '{"job_id":"before","args":["100"]}'
is "$STATUS" 200 "a job is accepted while there is room"
ok "it runs" wait_state before SUCCESS 30

#  Fill the file system while 4 clients submit, 200 jobs a second.
: > "$NODE_DIR/acked"
load_start "$a_HTTP" rows fill_ 100000 6 "$NODE_DIR/acked" 200 4
sleep 1.5
dd if=/dev/zero of="$DISK/filler" bs=64k 2> "$NODE_DIR/dd.err"
like "$(cat "$NODE_DIR/dd.err")" "No space left on device" "the file system is full"
load_wait
diag "while filling: $LOAD_ACKED acknowledged; $(df -k "$DISK" | awk 'NR == 2 { print $4 }') KiB left"
ok "the node survived the disk filling up" kill -0 "$(cat "$NODE_DIR/a.pid")"

#  Full: every submission is refused with 507 and a message saying why.
: > "$NODE_DIR/acked-full"
load_start "$a_HTTP" rows full_ 400 2 "$NODE_DIR/acked-full" 200 4
load_wait
is "$LOAD_ACKED" 0 "no job is acknowledged while the disk is full"
like "$(cat "$LOAD_OUT")" "status 507: [0-9]+" "submissions are refused with 507"
api POST /tasks/rows/jobs '{"job_id":"refused","args":["1"]}'
is "$STATUS" 507 "one more submission: 507"
like "$(jfield .message)" "full" "with a message that says the storage is full"
api GET /jobs/refused
is "$STATUS" 404 "the refused job was not kept"

#  Reads keep working.
api GET /jobs/before
is "$(jfield .data.state)" SUCCESS "job status is served while full"
api GET '/jobs/before/results?limit=3'
is "$STATUS" 200 "results are served while full"
api GET /health
is "$STATUS" 200 "health answers while full"
is "$(jfield .data.state_store.full)" true "health says the store is full"

#  Space returns: accepted again without a restart.
rm -f "$DISK/filler"
n=0
while [ $n -lt 100 ]; do
    api POST /tasks/rows/jobs "{\"job_id\":\"after$n\",\"args\":[\"10\"]}"
    [ "$STATUS" = 200 ] && break
    sleep 0.2; n=$((n + 1))
done
is "$STATUS" 200 "with space back, a job is accepted again (after $((n * 2 / 10)) s)"
ok "and runs" wait_state "after$n" SUCCESS 30
api GET /health
is "$(jfield .data.state_store.full)" false "health says the store has room again"

#  Nothing acknowledged was lost: every job that got a 200 is there and ends.
cat "$NODE_DIR/acked-full" >> "$NODE_DIR/acked"
load_check "$a_HTTP" "$NODE_DIR/acked" 90 > "$NODE_DIR/states"
is "$(load_lines "$NODE_DIR/states")" "$(load_lines "$NODE_DIR/acked")" "every acknowledged job was looked up"
is "$(awk '$2 == "missing" || $2 == "unreachable"' "$NODE_DIR/states" | wc -l)" 0 \
   "every job acknowledged while filling is kept"
is "$(awk '$2 != "SUCCESS" && $2 != "FAILURE"' "$NODE_DIR/states" | wc -l)" 0 \
   "every one of them is terminal"
bad=0
while read -r id state count; do
    [ "$state" != SUCCESS ] || [ "$count" = "$(load_rows "$id")" ] || bad=$((bad + 1))
done < "$NODE_DIR/states"
is "$bad" 0 "every one that succeeded reports the task's row count"
failed=$(awk '$2 == "FAILURE" { print $1; exit }' "$NODE_DIR/states")
if [ -n "$failed" ]; then
    api GET "/jobs/$failed"
    like "$(jfield .data.error)" "full" "one that failed says the disk was full"
fi
diag "outcomes: $(awk '{ print $2 }' "$NODE_DIR/states" | sort | uniq -c | tr -s ' \n' ' ')"
ok "the node still runs" kill -0 "$(cat "$NODE_DIR/a.pid")"
node_stop a
ok "it never aborted" bash -c "! grep -E 'Assertion|AddressSanitizer|runtime error' '$NODE_DIR/a.log'"

done_testing
