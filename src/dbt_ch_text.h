/*  =========================================================================
    dbt_ch_text - ClickHouse values as text

    The text of values read in binary from ClickHouse: integers and
    decimals (exact, up to 128 bits), floats and quoted strings the way the
    server prints them inside arrays and tuples, DateTime64 ticks. Pure
    functions writing into caller-owned buffers; any thread.
    =========================================================================
*/
#ifndef DBT_CH_TEXT_H_INCLUDED
#define DBT_CH_TEXT_H_INCLUDED

#include "dbt_driver.h"

//  Decimal digits of v into out (at least 20 bytes). Returns the length.
size_t
    dbt_ch_text_u64 (uint64_t v, char *out);

//  Decimal digits of v, with a minus sign, into out (at least 21 bytes).
//  Returns the length.
size_t
    dbt_ch_text_i64 (int64_t v, char *out);

//  A Decimal with scale digits after the point (ClickHouse prints them
//  all: 1.50) from its two's complement 128-bit value hi:lo (narrower
//  values sign-extended) into out (at least 48 bytes). Returns the length.
size_t
    dbt_ch_text_decimal (uint64_t hi, uint64_t lo, int scale, char *out);

//  A Float64 (single: a Float32) as ClickHouse prints it, the shortest
//  digits that read back, positional from 1e-6 to below 1e21 and with an
//  exponent outside (1e-7, 1e21), nan, inf, -inf; into out (at least 40
//  bytes). Returns the length.
size_t
    dbt_ch_text_float (double v, bool single, char *out);

//  A DateTime64 value (ticks of 10^-scale seconds since the epoch) as
//  type (TIMESTAMP or TIMESTAMPTZ) text into out (at least 48 bytes);
//  with more than 6 fraction digits, all of them and no zone. cache as
//  for dbt_cell_unixtime. Returns the length, or -1 out of range.
int
    dbt_ch_text_datetime64 (int64_t ticks, int scale, dbt_coltype_t type,
                            dbt_cell_daycache_t *cache, char *out);

//  Append len bytes quoted as ClickHouse prints a string in text: '...'
//  with \b \f \n \r \t \0 \\ \' escaped, other bytes as they are.
void
    dbt_ch_text_quoted (dbt_buf_t *out, const char *val, size_t len);

//  Self test of this module.
void
    dbt_ch_text_test (bool verbose);

#endif
