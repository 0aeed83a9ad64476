/*  =========================================================================
    fuzz - what every fuzz target in tests/fuzz/ provides

    A target is one fuzz_NAME.c defining dbt_fuzz_one; fuzz_main.c turns it
    into a libFuzzer target (LLVMFuzzerTestOneInput, built with
    -DDBT_LIBFUZZER by ./configure --enable-fuzzers) or into a standalone
    replay program that make check runs over the seed corpus in
    tests/fixtures/NAME/ (tests/fuzz.t). See tests/README.md.
    =========================================================================
*/
#ifndef DBT_FUZZ_H_INCLUDED
#define DBT_FUZZ_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "../../src/dbt_classes.h"

//  Feed one input (size bytes at data, exactly; not NUL-terminated) to the
//  code under test and check its invariants, aborting (assert) when one
//  breaks. Returns 0 when the input was accepted, or -1 when it was
//  refused, with the reason in err (DBT_ERRMSG_LEN bytes). Must leave no
//  state behind but caches that do not change its results.
int
    dbt_fuzz_one (const uint8_t *data, size_t size, char *err);

//  A fixed configuration (sqlite db.a, db.b, results.r, results.s) and
//  task registry (t: no args; two: 2 args, db a or b, queue q) that
//  requests are checked against. Made on first use, kept for the process.
void
    dbt_fuzz_registry (dbt_config_t **config, dbt_tasks_t **tasks);

#endif
