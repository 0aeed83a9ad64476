#!/bin/bash
#  tls.sh - HTTPS on the HTTP front. openssl makes a CA and a certificate
#  for 127.0.0.1 signed by it; a node with [app] tls_cert / tls_key serves
#  the API over HTTPS: curl --cacert gets answers, curl without the CA
#  refuses the certificate, bearer auth works, a job runs; plain HTTP to
#  the same port fails at once and the node keeps serving; the dashboard
#  works over HTTPS in headless Chromium (token prompt); tcpdump on
#  loopback never sees the bearer token; a half or bad configuration stops
#  start-up with a clear error.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "openssl" command -v openssl
need "tcpdump (apt-get install tcpdump)" command -v tcpdump
need "root, for tcpdump" test "$(id -u)" = 0
need "chromium and chromium-driver (the dashboard over HTTPS)" test -x /usr/bin/chromium -a -x /usr/bin/chromedriver
node_dir

#  --------------------------------------------------------------------------
#  A CA and a server certificate for 127.0.0.1 and localhost.
T="$NODE_DIR/tls"
mkdir -p "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dungbeetle test CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>"$T/openssl.err" \
 && openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$T/node.key" -out "$T/node.csr" 2>>"$T/openssl.err" \
 && printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n' > "$T/ext.cnf" \
 && openssl x509 -req -in "$T/node.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/ext.cnf" -out "$T/node.pem" 2>>"$T/openssl.err"
ok "openssl makes a CA and a node certificate" openssl verify -CAfile "$T/ca.pem" "$T/node.pem"
[ -s "$T/node.pem" ] || { diag "$(cat "$T/openssl.err")"; bail "no certificate"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: count_entries
SELECT COUNT(*) AS entries FROM entries;
SQL
token=tok-$RANDOM-secret
tls_config () {      # tls_config "TLS LINES"
    node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
auth_token = $token
$1
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.sample]
type = sqlite
dsn = @DIR@/sample.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/results.db
INI
}
https () {           # https METHOD PATH [BODY] -> $STATUS $BODY, with the CA and token
    local method=$1 path=$2 out; out=$(mktemp)
    STATUS=$(curl -s -o "$out" -w '%{http_code}' --cacert "$T/ca.pem" -H "Authorization: Bearer $token" \
             -X "$method" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
             "https://127.0.0.1:$a_HTTP$path")
    BODY=$(cat "$out"); rm -f "$out"
}

tls_config "tls_cert = $T/node.pem
tls_key = $T/node.key"
"$DBT_BIN" --config "$NODE_DIR/a.ini" >> "$NODE_DIR/a.log" 2>&1 &
echo $! > "$NODE_DIR/a.pid"
up () {
    local n=0
    while [ $n -lt 100 ]; do
        curl -s -o /dev/null --cacert "$T/ca.pem" "https://127.0.0.1:$a_HTTP/" && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
ok "the node starts with tls_cert and tls_key" up
ok "it says it serves HTTPS" grep -q "http: listening on 127.0.0.1:$a_HTTP with HTTPS" "$NODE_DIR/a.log"

#  --------------------------------------------------------------------------
#  HTTPS with the CA; bearer auth over it.
capture="$NODE_DIR/https.pcap"
tcpdump -i lo --immediate-mode -U -w "$capture" "tcp port $a_HTTP" 2> "$capture.err" &
dump=$!
n=0; while ! grep -q "listening on" "$capture.err" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done

https GET /
is "$STATUS" 200 "curl --cacert gets GET / over HTTPS"
is "$(jfield .data)" "dungbeetle 0.1.0" "with the server's answer"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" "https://127.0.0.1:$a_HTTP/jobs/x")
is "$STATUS" 401 "without the bearer token: 401 over HTTPS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" -H "Authorization: Bearer wrong" \
         "https://127.0.0.1:$a_HTTP/jobs/x")
is "$STATUS" 401 "with a wrong token: 401"
https POST /tasks/count_entries/jobs '{"job_id":"t1"}'
is "$STATUS" 200 "with the token a job is accepted over HTTPS"
done_job () {
    local n=0
    while [ $n -lt 100 ]; do
        https GET /jobs/t1
        [ "$(jfield .data.state)" = SUCCESS ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
ok "and runs to SUCCESS" done_job
https GET /jobs/t1/results
is "$STATUS" 200 "its results read back over HTTPS"
#  The dashboard over HTTPS: the page needs no token, its JSON does; in
#  headless Chromium it asks for the token once and shows the overview.
STATUS=$(curl -s -o "$NODE_DIR/ui.html" -w '%{http_code}' --cacert "$T/ca.pem" "https://127.0.0.1:$a_HTTP/ui/")
is "$STATUS" 200 "the dashboard's page is served over HTTPS"
https GET /queues
is "$STATUS" 200 "its /queues answers over HTTPS with the token"
out=$(DASHBOARD_TEST_CA="$T/ca.pem" /usr/bin/python3 "$top_srcdir/tests/integration/dashboard.py" \
      token "https://127.0.0.1:$a_HTTP/ui/" "$token" default 2>&1); rc=$?
printf '%s\n' "$out" | grep '^# ' | head -20
[ $rc = 0 ] || printf '%s\n' "$out" | grep -v '^# ' | tail -10 | sed 's/^/#   /'
_tap_result $rc "in Chromium over HTTPS the dashboard asks for the token and shows the queues"
curl -s -o /dev/null --cacert "$T/ca.pem" "https://localhost:$a_HTTP/" 2>/dev/null
ok "the name localhost verifies too" curl -s -o /dev/null --cacert "$T/ca.pem" "https://localhost:$a_HTTP/"
curl -s -o /dev/null "https://127.0.0.1:$a_HTTP/"
is "$?" "60" "without the CA curl refuses the certificate (exit 60)"
sleep 1
kill "$dump"; wait "$dump" 2>/dev/null
ok "the capture holds the HTTPS traffic" test "$(tcpdump -r "$capture" 2>/dev/null | wc -l)" -gt 20
ok "the bearer token never crosses loopback in clear" bash -c "! grep -aq '$token' '$capture'"

#  --------------------------------------------------------------------------
#  Plain HTTP to the TLS port fails cleanly.
start=$(date +%s%N)
curl -s -m 10 -o /dev/null "http://127.0.0.1:$a_HTTP/"
rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
ok "plain HTTP to the HTTPS port fails (curl exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 28
ok "at once, not by a timeout (${elapsed} ms)" test "$elapsed" -lt 5000
printf 'GET / HTTP/1.0\r\n\r\n' > "$NODE_DIR/plain.req"
ok "a raw plain request gets no HTTP answer" bash -c \
    "exec 3<>/dev/tcp/127.0.0.1/$a_HTTP; cat '$NODE_DIR/plain.req' >&3; ! timeout 5 cat <&3 | grep -q 'HTTP/1'"
https GET /
is "$STATUS" 200 "the node still serves HTTPS afterwards"
ok "the failed handshake is logged" grep -q "http: tls:" "$NODE_DIR/a.log"
node_stop a

#  --------------------------------------------------------------------------
#  Bad configurations stop start-up.
starts_not () {      # starts_not PATTERN: the node exits with PATTERN on stderr
    ! timeout 10 "$DBT_BIN" --config "$NODE_DIR/a.ini" > "$NODE_DIR/bad.out" 2>&1 && grep -q "$1" "$NODE_DIR/bad.out"
}
tls_config "tls_cert = $T/node.pem"
ok "tls_cert without tls_key is refused" starts_not "tls_cert is set but tls_key is not"
tls_config "tls_cert = $T/node.pem
tls_key = $T/missing.key"
ok "a missing key file is refused" starts_not "tls_key: cannot read"
tls_config "tls_cert = $T/node.key
tls_key = $T/node.key"
ok "a key given as the certificate is refused" starts_not "tls_cert: .* is not a PEM file with a CERTIFICATE"
tls_config "tls_cert = $T/node.pem
tls_key = $T/ca.key"
ok "a key that does not match the certificate stops start-up" starts_not "cannot listen"
ok "with GnuTLS's reason in the log" grep -q "http: tls:" "$NODE_DIR/bad.out"

done_testing
