/*  =========================================================================
    dbt_driver_pg - PostgreSQL source and results driver (libpq)

    DSN is a libpq conninfo string or URI. Sources run with bound parameters
    and stream rows without holding the result in memory; results are
    written with COPY FROM STDIN into a fresh staging table inside one
    transaction that ends by dropping the old table and renaming the new one
    (an atomic swap); unlogged tables on request. Cancel is PQcancel.
    =========================================================================
*/
#ifndef DBT_DRIVER_PG_H_INCLUDED
#define DBT_DRIVER_PG_H_INCLUDED

#include "dbt_driver.h"

//  The driver's vtable.
extern const dbt_driver_t dbt_driver_pg;

//  Self test of this module (offline checks; the live checks run from
//  tests/dbt_drivertest against a real server).
void
    dbt_driver_pg_test (bool verbose);

#endif
