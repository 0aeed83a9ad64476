/*  =========================================================================
    dbt_sqlite_types - SQLite declared types to canonical column types and back

    Declared types of results tables are chosen by SQLite's type
    affinity rules (https://www.sqlite.org/datatype3.html, section 3.1) so
    every canonical value reads back exactly:

        TEXT         TEXT                 TEXT affinity, bound as text
        BIGINT       BIGINT               INTEGER affinity, bound as int64
        UBIGINT      DECIMAL_TEXT(20,0)   TEXT affinity (no INT in the name):
                                          values past int64 would become REAL
        DECIMAL      DECIMAL_TEXT(p,s)    TEXT affinity: NUMERIC affinity
                     or DECIMAL_TEXT      would turn '1.10' into 1.1 and long
                                          values into REAL
        DOUBLE       DOUBLE               REAL affinity, bound as double
                                          (NaN bound as text 'NaN': SQLite
                                          stores a NaN double as NULL)
        BOOLEAN      BOOLEAN              NUMERIC affinity, bound as 1/0
        DATE         DATE                 NUMERIC affinity; canonical text is
        TIMESTAMP    TIMESTAMP            never a number, so it stays text
        TIMESTAMPTZ  TIMESTAMPTZ

    The reader maps these names back (DECIMAL_TEXT(20,0) reads as
    DECIMAL(20,0), the same digits), and any other declared type by name,
    SQLite-style. Pure functions, no SQLite calls.

    =========================================================================
*/
#ifndef DBT_SQLITE_TYPES_H_INCLUDED
#define DBT_SQLITE_TYPES_H_INCLUDED

//  The canonical type of a declared column type (NULL or "" = TEXT), and
//  its precision and scale for DECIMAL/NUMERIC(p[,s]) (else 0 and -1).
dbt_coltype_t
    dbt_sqlite_decltype_map (const char *decl, int *precision, int *scale);

//  The declared type a results column gets (see the table above). Caller
//  frees.
char *
    dbt_sqlite_decltype_for (const dbt_column_t *col);

#endif
