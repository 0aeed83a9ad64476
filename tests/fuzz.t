#!/bin/sh
#  fuzz.t - replay every fuzz target over its seed corpus (TAP)
#  tests/fixtures/NAME/* is fed to tests/fuzz/fuzz_NAME, one file per test:
#  valid_* must be accepted ("FILE: ok"), broken_* refused with an error,
#  any other file (a crash found by fuzzing, kept as a regression) only
#  must not crash. Under --enable-sanitizers this is an ASan+UBSan run.
srcdir="${top_srcdir:-.}"
builddir="${top_builddir:-.}"
names="${FUZZ_NAMES:-tasks jobreq msg config ch_native dsn}"
total=0
for name in $names; do
    for file in "$srcdir/tests/fixtures/$name"/*; do
        [ -f "$file" ] && total=$((total + 1))
    done
done
echo "1..$total"
n=0
status=0
for name in $names; do
    fuzz="$builddir/tests/fuzz/fuzz_$name"
    for file in "$srcdir/tests/fixtures/$name"/*; do
        [ -f "$file" ] || continue
        n=$((n + 1))
        base=$(basename "$file")
        out=$("$fuzz" "$file" 2>&1)
        rc=$?
        ok=yes
        case "$base" in
            valid_*)  [ "$out" = "$file: ok" ] || ok=no ;;
            broken_*) case "$out" in "$file: ok"|"") ok=no ;; esac ;;
        esac
        if [ $rc -eq 0 ] && [ $ok = yes ]; then
            echo "ok $n - $name/$base"
        else
            echo "not ok $n - $name/$base # exit $rc: $(printf '%s' "$out" | head -c 300 | tr '\n' ' ')"
            status=1
        fi
    done
done
exit $status
