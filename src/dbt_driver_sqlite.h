/*  =========================================================================
    dbt_driver_sqlite - SQLite 3 source and results driver

    DSN is a file path or a "file:" URI. Sources are opened read-only.
    Results: each table is a database file of its own in DSN.d/ (see
    dbt_sqlite_dir.h), written in one transaction (create the table,
    prepared INSERT per row) in a temporary
    file that is synced and renamed into place, so readers see the old or
    the new table and jobs share no lock. SQL on a connection reads any
    table in DSN.d/ by name (its file is attached on demand). Cancel is
    sqlite3_interrupt. With sample_data set, a missing source file is
    created with the built-in sample dataset.
    =========================================================================
*/
#ifndef DBT_DRIVER_SQLITE_H_INCLUDED
#define DBT_DRIVER_SQLITE_H_INCLUDED

#include "dbt_driver.h"

//  The driver's vtable.
extern const dbt_driver_t dbt_driver_sqlite;

//  Self test of this module.
void
    dbt_driver_sqlite_test (bool verbose);

#endif
