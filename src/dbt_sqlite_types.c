/*  =========================================================================
    dbt_sqlite_types - SQLite declared types to canonical column types and back

    See dbt_sqlite_types.h. Tested in dbt_driver_sqlite's self test, beside
    the reads and writes that use it.
    =========================================================================
*/
#include "dbt_classes.h"

dbt_coltype_t
dbt_sqlite_decltype_map (const char *decl, int *precision, int *scale)
{
    *precision = 0;
    *scale = -1;
    if (!decl || !*decl)
        return DBT_COL_TEXT;
    if (strcasestr (decl, "TIMESTAMPTZ") || strcasestr (decl, "DATETIMETZ")
    || (strcasestr (decl, "TIMESTAMP") && strcasestr (decl, "WITH TIME ZONE")))
        return DBT_COL_TIMESTAMPTZ;
    if (strcasestr (decl, "TIMESTAMP") || strcasestr (decl, "DATETIME"))
        return DBT_COL_TIMESTAMP;
    if (strncasecmp (decl, "DATE", 4) == 0
    && (decl [4] == 0 || decl [4] == ' ' || decl [4] == '('))
        return DBT_COL_DATE;
    if (strcasestr (decl, "BOOL"))
        return DBT_COL_BOOLEAN;
    if (strcasestr (decl, "DECIMAL") || strcasestr (decl, "NUMERIC")) {
        const char *paren = strchr (decl, '(');
        if (paren) {
            char *end = NULL;
            long p = strtol (paren + 1, &end, 10);
            long s = 0;
            if (end && *end == ',')
                s = strtol (end + 1, &end, 10);
            if (end && *end == ')' && p > 0 && p <= 1000 && s >= 0 && s <= 1000) {
                *precision = (int) p;
                *scale = (int) s;
            }
        }
        return DBT_COL_DECIMAL;
    }
    if (strcasestr (decl, "INT") && !strcasestr (decl, "INTERVAL")
    && !strcasestr (decl, "POINT"))
        return DBT_COL_BIGINT;
    if (strcasestr (decl, "REAL") || strcasestr (decl, "FLOA") || strcasestr (decl, "DOUB"))
        return DBT_COL_DOUBLE;
    return DBT_COL_TEXT;
}

char *
dbt_sqlite_decltype_for (const dbt_column_t *col)
{
    switch (col->type) {
        case DBT_COL_BIGINT:      return dbt_strdup ("BIGINT");
        case DBT_COL_UBIGINT:     return dbt_strdup ("DECIMAL_TEXT(20,0)");
        case DBT_COL_DOUBLE:      return dbt_strdup ("DOUBLE");
        case DBT_COL_BOOLEAN:     return dbt_strdup ("BOOLEAN");
        case DBT_COL_DATE:        return dbt_strdup ("DATE");
        case DBT_COL_TIMESTAMP:   return dbt_strdup ("TIMESTAMP");
        case DBT_COL_TIMESTAMPTZ: return dbt_strdup ("TIMESTAMPTZ");
        case DBT_COL_DECIMAL:
            if (col->precision > 0 && col->scale >= 0)
                return dbt_printf ("DECIMAL_TEXT(%d,%d)", col->precision, col->scale);
            return dbt_strdup ("DECIMAL_TEXT");
        case DBT_COL_TEXT:
            break;
    }
    return dbt_strdup ("TEXT");
}
