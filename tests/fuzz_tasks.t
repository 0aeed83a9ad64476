#!/bin/sh
#  fuzz_tasks.t - run the task parser's fuzz target over the seed corpus (TAP)
#  valid_*.sql must parse, broken_*.sql must fail with a file:line error,
#  and nothing may crash (under --enable-sanitizers this is an ASan run).
fixtures="${top_srcdir:-.}/tests/fixtures/tasks"
fuzz="${top_builddir:-.}/tests/fuzz_tasks"
set -- "$fixtures"/*.sql
echo "1..$#"
n=0
status=0
for file in "$@"; do
    n=$((n + 1))
    name=$(basename "$file")
    out=$("$fuzz" "$file" 2>&1)
    rc=$?
    case "$name" in
        valid_*)  expect="$file: ok" ;;
        *)        expect="$file: fuzz.sql:" ;;
    esac
    case "$out" in
        "$expect"*) ok=yes ;;
        *) ok=no ;;
    esac
    if [ $rc -eq 0 ] && [ $ok = yes ]; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name # exit $rc: $(echo "$out" | head -c 300)"
        status=1
    fi
done
exit $status
