/*  =========================================================================
    dbt_driver_sqlite - SQLite 3 source and results driver

    DSN is a file path or a "file:" URI. Sources are opened read-only;
    results are written in one transaction per job (create staging table,
    prepared INSERT per row, drop old and rename new) so readers see the old
    or the new table. Cancel is sqlite3_interrupt. With sample_data set, a
    missing source file is created with the built-in sample dataset.
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
