# load.sh - concurrent job submission and acknowledged-job checks (bash)
#
#   . "$top_srcdir/tests/lib/load.sh"     # after node.sh
#   load_start PORT TASK PREFIX COUNT SECONDS ACKFILE [RATE] [CONNS]
#                       # tests/dbt_loadgen in the background ($LOAD_PID),
#                       # at most RATE jobs/s (0: no limit), 8 connections:
#                       # jobs PREFIX0.. with arg "i % 50 + 1", every id
#                       # answered 200 appended to ACKFILE
#   load_wait           # waits for it; prints its summary as diag lines,
#                       # sets LOAD_ACKED (acknowledged in this run)
#   load_check PORT ACKFILE SECONDS > STATES
#                       # "id state count" of every acknowledged id, polled
#                       # until all are terminal or SECONDS passed
#   load_rows ID        # rows the task returns for job ID (i % 50 + 1)
#   load_pause MIN MAX  # sleeps a random time in [MIN, MAX) seconds
#   load_lines FILE     # line count of FILE, "no FILE" when it is gone
#
# The load generator is a C program (built by make check) so that thousands
# of submissions per second come from few keep-alive connections, and the
# file of acknowledged ids is written by a process the test never kills.

: "${LOADGEN:=${top_builddir:-.}/tests/dbt_loadgen}"

load_start () {     # load_start PORT TASK PREFIX COUNT SECONDS ACKFILE [RATE] [CONNS]
    LOAD_OUT=$(mktemp "$NODE_DIR/load.XXXXXX")
    "$LOADGEN" submit -v -p "$1" -t "$2" -P "$3" -n "$4" -d "$5" -o "$6" -r "${7:-0}" -c "${8:-8}" \
        > "$LOAD_OUT" 2>&1 &
    LOAD_PID=$!
}

load_wait () {
    wait "$LOAD_PID"
    local rc=$?
    sed 's/^/# load: /' "$LOAD_OUT"
    LOAD_ACKED=$(sed -n 's/^tried [0-9]* acked \([0-9]*\) .*/\1/p' "$LOAD_OUT")
    : "${LOAD_ACKED:=0}"
    return $rc
}

load_check () {     # load_check PORT ACKFILE SECONDS
    "$LOADGEN" check -p "$1" -i "$2" -w "$3" -c 4
}

load_rows () {      # load_rows ID: the task's arg for ID, which is its row count
    local n=${1##*[!0-9]}
    echo $(( n % 50 + 1 ))
}

load_pause () {     # load_pause MIN MAX
    sleep "$(awk -v a="$1" -v b="$2" -v r="$RANDOM" 'BEGIN { printf "%.2f", a + (b - a) * r / 32768 }')"
}

load_lines () {     # load_lines FILE: its line count, or "no FILE" (so a lost file never compares equal)
    if [ -f "$1" ]; then wc -l < "$1"; else echo "no $1"; fi
}
