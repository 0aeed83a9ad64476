# tap.sh - TAP output for the integration tests (bash)
#
#   . "$top_srcdir/tests/lib/tap.sh"
#   is "$got" "$want" "description"
#   ok "description" command args...     # passes when the command succeeds
#   need "reason" command args...         # skip the script (fail under CI=true)
#   done_testing                          # prints the plan; call last
#
# Output goes to stdout for automake's TAP driver; diagnostics start "# ".

_tap_n=0
_tap_failed=0

diag () { printf '# %s\n' "$*"; }

_tap_result () {    # _tap_result STATUS DESCRIPTION
    _tap_n=$((_tap_n + 1))
    if [ "$1" = 0 ]; then
        printf 'ok %d - %s\n' "$_tap_n" "$2"
    else
        printf 'not ok %d - %s\n' "$_tap_n" "$2"
        _tap_failed=$((_tap_failed + 1))
    fi
}

ok () {
    local desc=$1; shift
    if "$@" >/dev/null 2>&1; then _tap_result 0 "$desc"; else _tap_result 1 "$desc"; fi
}

is () {
    if [ "$1" = "$2" ]; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        diag "  got:      '$1'"
        diag "  expected: '$2'"
    fi
}

like () {   # like GOT REGEX DESC
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        diag "  got:      '$1'"
        diag "  expected to match: $2"
    fi
}

# Skip the whole script when a precondition fails; under CI=true that is
# a failure instead, because CI installs and starts every server.
need () {
    local reason=$1; shift
    "$@" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then
        echo "Bail out! $reason (a missing server is a failure under CI=true)"
        exit 1
    fi
    echo "1..0 # SKIP $reason"
    exit 0
}

bail () {
    echo "Bail out! $*"
    exit 1
}

done_testing () {
    printf '1..%d\n' "$_tap_n"
    [ "$_tap_failed" = 0 ]
}
