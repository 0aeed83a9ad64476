# node.sh - start and drive dungbeetle nodes from integration tests (bash)
#
#   . "$top_srcdir/tests/lib/node.sh"
#   node_dir                        # makes $NODE_DIR (removed at exit)
#   node_config NAME <<EOF ... EOF  # writes $NODE_DIR/NAME.ini with ports filled in
#   node_start NAME                 # starts it, waits until HTTP answers
#   api GET /jobs/x                 # sets $STATUS and $BODY
#   wait_state JOB STATE [SECONDS]  # polls until the job reaches STATE
#   node_stop NAME [SIGNAL]
#   sqlite_table_file DSN TABLE     # file holding TABLE of SQLite results DSN
#
# Each node NAME gets ports ${NAME}_HTTP and ${NAME}_MESH chosen free at
# random; in a config heredoc write @HTTP@ and @MESH@ (and @DIR@).

: "${DBT_BIN:=${top_builddir:-.}/src/dungbeetle}"

node_dir () {
    NODE_DIR=$(mktemp -d /tmp/dbt-test.XXXXXX)
    export NODE_DIR
    trap 'node_cleanup' EXIT
    trap 'exit 143' TERM INT HUP     #  so the EXIT trap stops nodes and servers
}

node_cleanup () {
    local pidfile
    for pidfile in "$NODE_DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        kill -KILL "$(cat "$pidfile")" 2>/dev/null
    done
    if type stop_all >/dev/null 2>&1; then stop_all; fi
    if [ -n "${KEEP_NODE_DIR:-}" ]; then diag "kept $NODE_DIR"; else rm -rf "$NODE_DIR"; fi
}

#  A port nobody listens on, below the kernel's ephemeral range (32768+)
#  so that outgoing connections cannot take it meanwhile.
free_port () {
    local port
    while true; do
        port=$((10000 + RANDOM % 22000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

node_config () {    # node_config NAME < template
    local name=$1
    cat > "$NODE_DIR/$name.tmpl"
    _node_render "$name"
}

#  Fill the template's ports (fresh ones each time) and paths.
_node_render () {
    local name=$1 http mesh
    http=$(free_port); mesh=$(free_port)
    while [ "$mesh" = "$http" ]; do mesh=$(free_port); done
    eval "${name}_HTTP=$http; ${name}_MESH=$mesh"
    sed -e "s|@HTTP@|$http|g" -e "s|@MESH@|$mesh|g" -e "s|@DIR@|$NODE_DIR|g" \
        "$NODE_DIR/$name.tmpl" > "$NODE_DIR/$name.ini"
}

node_start () {     # node_start NAME [extra flags]
    local name=$1; shift
    local try
    for try in 1 2 3; do
        _node_start_once "$name" "$@" && return 0
        #  A port taken between picking and binding: pick others and retry
        #  (only for configs rendered from a template with fresh ports).
        grep -q "Address already in use" "$NODE_DIR/$name.log" 2>/dev/null && [ -f "$NODE_DIR/$name.tmpl" ] \
            || return 1
        diag "node $name: a port was taken meanwhile, retrying with others"
        : > "$NODE_DIR/$name.log"
        _node_render "$name"
    done
    return 1
}

_node_start_once () {
    local name=$1; shift
    local port
    eval "port=\${${name}_HTTP}"
    "$DBT_BIN" --config "$NODE_DIR/$name.ini" "$@" >>"$NODE_DIR/$name.log" 2>&1 &
    echo $! > "$NODE_DIR/$name.pid"
    CURRENT_PORT=$port
    local n=0
    while [ $n -lt 150 ]; do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then return 0; fi
        if ! kill -0 "$(cat "$NODE_DIR/$name.pid")" 2>/dev/null; then
            diag "node $name exited during start-up:"; sed 's/^/#   /' "$NODE_DIR/$name.log"
            rm -f "$NODE_DIR/$name.pid"
            return 1
        fi
        sleep 0.1; n=$((n + 1))
    done
    diag "node $name did not answer on port $port"
    return 1
}

node_stop () {      # node_stop NAME [SIGNAL]
    local name=$1 sig=${2:-TERM} pid
    pid=$(cat "$NODE_DIR/$name.pid" 2>/dev/null) || return 0
    kill "-$sig" "$pid" 2>/dev/null
    local n=0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    kill -0 "$pid" 2>/dev/null && { diag "node $name ignored SIG$sig"; kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null
    rm -f "$NODE_DIR/$name.pid"
}

node_use () {       # node_use NAME: later api calls go to this node
    eval "CURRENT_PORT=\${${1}_HTTP}"
}

api () {            # api METHOD PATH [BODY] -> $STATUS $BODY
    local method=$1 path=$2 body=${3-} out
    out=$(mktemp)
    if [ $# -ge 3 ]; then
        STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
                 --data-binary "$body" "http://127.0.0.1:$CURRENT_PORT$path")
    else
        STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "http://127.0.0.1:$CURRENT_PORT$path")
    fi
    BODY=$(cat "$out"); rm -f "$out"
}

jfield () {         # jfield FILTER: jq over $BODY
    printf '%s' "$BODY" | jq -r "$1"
}

wait_state () {     # wait_state JOB STATE [SECONDS]
    local job=$1 want=$2 limit=${3:-30} n=0 state=
    while [ $n -lt $((limit * 10)) ]; do
        api GET "/jobs/$job"
        state=$(jfield '.data.state' 2>/dev/null)
        [ "$state" = "$want" ] && return 0
        case "$state" in SUCCESS|FAILURE) [ "$want" != "$state" ] && break ;; esac
        sleep 0.1; n=$((n + 1))
    done
    diag "job $job is '$state', wanted '$want': $BODY"
    return 1
}

#  sqlite_table_file DSN TABLE: the file that holds TABLE of the SQLite
#  results database DSN (docs/config.md): DSN.d/, each capital as + and the
#  lower-case letter, ':' as '=', then .db (results_CaseA: results_+case+a.db).
sqlite_table_file () {
    printf '%s.d/%s.db\n' "$1" "$(printf '%s' "$2" | sed -e 's/[A-Z]/+\L&/g' -e 's/:/=/g')"
}
