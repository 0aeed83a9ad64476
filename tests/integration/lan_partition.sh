#!/bin/bash
#  lan_partition.sh - a partition between the two members of a failover
#  pair only, on a LAN of network namespaces: the callers still reach both.
#
#  Hosts a (primary dispatcher), b (backup) and c (an HTTP front) on a
#  bridge, each with workers; PostgreSQL on the bridge's own address.
#  Submissions go steadily through c's front. For 15 s nftables drops
#  everything between a and b (in both namespaces); c reaches both, and
#  so do a's and b's workers. Checks: b never becomes active (its /health
#  every 200 ms and its log), so there is never a second active member;
#  a carries on alone and says so in /health; b dispatches no job, and no
#  job ran on two workers at once; submissions are acknowledged during
#  the partition; after the heal a is still the one active member, every
#  job acknowledged with 200 is terminal and succeeded as a, b and c say,
#  and b's copy and c's replica equal a's records.
#  Needs root (CI runs as root); skips elsewhere, fails under CI=true.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
. "$top_srcdir/tests/lib/netns.sh"
. "$top_srcdir/tests/lib/pair.sh"
need "root (network namespaces)" test "$(id -u)" = 0
need "ip netns" ip netns list
need "nft (apt-get install nftables)" command -v nft
need "jq" command -v jq
need "mdb_dump (apt-get install lmdb-utils)" command -v mdb_dump
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
node_dir
netns_lan a b c || bail "cannot build the LAN of namespaces"
DBT_PG_LISTEN="127.0.0.1,$NETNS_BRIDGE_IP" start_pg || bail "PostgreSQL did not start"
PG_REMOTE="host=$NETNS_BRIDGE_IP port=$PG_PORT user=postgres dbname=testdb"
PAIR_WORKERS=c pair_lan_start
ok "a is active and b passive after start" pair_wait_roles 30 active passive
c_up () {
    local n
    for n in $(seq 100); do
        curl -s -m 2 -H 'Content-Type: application/json' -d '{"job_id": "warm", "queue": "default", "args": ["0"]}' \
            "http://${NETNS_IP[c]}:6060/tasks/quick/jobs" | jq -e '.status == "success"' && return 0
        sleep 0.2
    done
    return 1
}
ok "c's front accepts a job" c_up

stop="$NODE_DIR/stop"
pair_poster "$NODE_DIR/posted.txt" "$stop" "${NETNS_IP[c]}" 6060
poster=$!
pair_watch a "$NODE_DIR/roles-a.txt" "$stop"
pair_watch b "$NODE_DIR/roles-b.txt" "$stop"
sleep 4
netns_partition a b || bail "cannot partition a from b"
part=$(now_ms)
diag "a and b partitioned"
apart () { ! netns_exec a timeout 2 bash -c "exec 3<>/dev/tcp/${NETNS_IP[b]}/6060"; }
ok "a and b no longer reach each other" apart
ok "c still reaches both" bash -c "exec 3<>/dev/tcp/${NETNS_IP[a]}/6060 && exec 4<>/dev/tcp/${NETNS_IP[b]}/6060"
alone () {
    local n
    for n in $(seq 50); do
        netns_exec a curl -s -m 1 "http://${NETNS_IP[a]}:6060/health" \
            | jq -e '.data.failover | .role == "active" and .alone and (.partner_up | not)' && return 0
        sleep 0.2
    done
    return 1
}
ok "a carries on alone and says so in /health" alone
sleep $(( 15 - ($(now_ms) - part) / 1000 ))
heal=$(now_ms)
netns_unpartition a b || bail "cannot heal the partition"
diag "partition healed"
during=$(awk -v a=$((part + 3000)) -v b=$heal '$2 == 200 && $4 > a && $4 < b' "$NODE_DIR/posted.txt" | wc -l)
diag "acknowledged from 3 s into the partition until the heal: $during"
ok "submissions are acknowledged during the partition" test "$during" -ge 50
ok "after the heal a is still active and b passive" pair_wait_roles 20 active passive
caught () {
    local n
    for n in $(seq 100); do
        netns_exec a curl -s -m 1 "http://${NETNS_IP[a]}:6060/health" \
            | jq -e '.data.failover | .partner_up and (.alone | not)' && return 0
        sleep 0.2
    done
    return 1
}
ok "b catches up: a no longer carries on alone" caught
settled=$(now_ms)
sleep 3
touch "$stop"
wait $poster
sleep 0.5
accepted=$(awk '$2 == 200' "$NODE_DIR/posted.txt" | wc -l)
diag "accepted $accepted of $(wc -l < "$NODE_DIR/posted.txt"); others: $(awk '$2 != 200 { print $2 }' \
    "$NODE_DIR/posted.txt" | sort | uniq -c | tr '\n' ' ')"
ok "jobs were accepted after the heal" \
    test "$(awk -v s=$settled '$2 == 200 && $3 > s' "$NODE_DIR/posted.txt" | wc -l)" -ge 20

#  Never a second active member: b never said active, a never stepped down.
diag "b's roles: $(awk '{ print $2 }' "$NODE_DIR/roles-b.txt" | uniq -c | tr '\n' ' ')"
diag "a's roles: $(awk '{ print $2 }' "$NODE_DIR/roles-a.txt" | uniq -c | tr '\n' ' ')"
ok "b's role was polled through the partition" \
    test "$(awk -v p=$part -v h=$heal '$1 > p && $1 < h && $2 == "passive"' "$NODE_DIR/roles-b.txt" | wc -l)" -ge 30
is "$(awk '$2 == "active"' "$NODE_DIR/roles-b.txt" | wc -l)" 0 "b never reported active"
is "$(awk '$2 != "active"' "$NODE_DIR/roles-a.txt" | wc -l)" 0 "a reported active throughout"
is "$(grep -c "pair: this node's dispatcher is now ACTIVE" "$NODE_DIR/b.log")" 0 "b's log never says it became active"
is "$(grep -c "dispatcher: job '[^']*' attempt [0-9]* to worker" "$NODE_DIR/b.log")" 0 "b dispatched no job"
grep "pair: this node's dispatcher is now" "$NODE_DIR/a.log" "$NODE_DIR/b.log" | while read -r l; do diag "  $l"; done

for h in a b c; do
    pair_states "$NODE_DIR/posted.txt" "${NETNS_IP[$h]}" 6060 > "$NODE_DIR/states-$h.txt"
    is "$(awk '$2 == "missing"' "$NODE_DIR/states-$h.txt" | wc -l)" 0 "every accepted job is found on $h"
    is "$(awk '$2 != "SUCCESS"' "$NODE_DIR/states-$h.txt" | wc -l)" 0 "every accepted job succeeded, as $h says"
    awk '$2 != "SUCCESS"' "$NODE_DIR/states-$h.txt" | head -3 | while read -r l; do diag "  $l"; done
done
is "$(awk '$4 != "a"' "$NODE_DIR/states-c.txt" | wc -l)" 0 "c's answers all come from a's records"

pair_spans "$NODE_DIR" "a b c" "a b c" > "$NODE_DIR/spans.txt"
diag "$(tail -1 "$NODE_DIR/spans.txt")"
grep '^overlap' "$NODE_DIR/spans.txt" | head -5 | while read -r l; do diag "  $l"; done
is "$(awk '/^attempts/ { print $6 }' "$NODE_DIR/spans.txt")" 0 "no job ran on two workers at once"
grep '^rerun' "$NODE_DIR/spans.txt" | head -5 | while read -r l; do diag "  $l"; done
is "$(awk '/^attempts/ { print $8 }' "$NODE_DIR/spans.txt")" 0 \
    "no job ran again after it wrote its results on a worker that stayed up"

dump () { mdb_dump -s jobs "$1" | sed '1,/^HEADER=END/d'; }
same () { [ -n "$1" ] && cmp -s <(dump "$NODE_DIR/data-a") <(dump "$1"); }
settle () {
    local n
    for n in $(seq 60); do same "$1" && return 0; sleep 0.5; done
    return 1
}
ok "b's records equal a's" settle "$NODE_DIR/data-b"
ok "c's replica equals a's records" settle "$(ls -d "$NODE_DIR/data-c/replica/a".* 2>/dev/null | head -1)"

for h in a b c; do kill -TERM "$(cat "$NODE_DIR/$h.pid")" 2>/dev/null; done
sleep 1
done_testing
