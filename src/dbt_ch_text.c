/*  =========================================================================
    dbt_ch_text - ClickHouse values as text

    See dbt_ch_text.h. Pure functions on caller-owned buffers; safe from
    any thread. Digits are written by hand: the ClickHouse reader calls
    these for every cell.
    =========================================================================
*/
#include "dbt_classes.h"
#include <math.h>

//  --------------------------------------------------------------------------
//  Decimal digits of v. Division by the constant 10 compiles to a
//  multiplication: several times faster than snprintf.

size_t
dbt_ch_text_u64 (uint64_t v, char *out)
{
    char tmp [20];
    size_t n = 0;
    do {
        tmp [n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out [i] = tmp [n - 1 - i];
    return n;
}

//  --------------------------------------------------------------------------
//  Decimal digits of a signed v.

size_t
dbt_ch_text_i64 (int64_t v, char *out)
{
    if (v >= 0)
        return dbt_ch_text_u64 ((uint64_t) v, out);
    out [0] = '-';
    return 1 + dbt_ch_text_u64 (0 - (uint64_t) v, out + 1);
}

//  Decimal digits of the 128-bit value hi:lo into out (at least 40
//  bytes); returns the length.
static size_t
s_u128_text (uint64_t hi, uint64_t lo, char *out)
{
    if (hi == 0)
        return dbt_ch_text_u64 (lo, out);
    uint32_t limb [4] = { (uint32_t) (hi >> 32), (uint32_t) hi, (uint32_t) (lo >> 32),
                          (uint32_t) lo };
    char tmp [40];
    size_t n = 0;
    while (limb [0] || limb [1] || limb [2] || limb [3]) {
        uint64_t rem = 0;
        for (int k = 0; k < 4; k++) {
            uint64_t cur = (rem << 32) | limb [k];
            limb [k] = (uint32_t) (cur / 10);
            rem = cur % 10;
        }
        tmp [n++] = (char) ('0' + rem);
    }
    if (n == 0)
        tmp [n++] = '0';
    for (size_t i = 0; i < n; i++)
        out [i] = tmp [n - 1 - i];
    return n;
}

//  --------------------------------------------------------------------------
//  A Decimal's text from its two's complement 128-bit value hi:lo.

size_t
dbt_ch_text_decimal (uint64_t hi, uint64_t lo, int scale, char *out)
{
    bool neg = hi >> 63;
    if (neg) {
        lo = ~lo + 1;
        hi = ~hi + (lo == 0);
    }
    char digits [40];
    size_t nd = s_u128_text (hi, lo, digits);
    size_t n = 0;
    if (neg)
        out [n++] = '-';
    size_t s = (size_t) scale;
    if (nd <= s) {
        out [n++] = '0';
        out [n++] = '.';
        for (size_t i = nd; i < s; i++)
            out [n++] = '0';
        memcpy (out + n, digits, nd);
        n += nd;
    }
    else {
        memcpy (out + n, digits, nd - s);
        n += nd - s;
        if (s) {
            out [n++] = '.';
            memcpy (out + n, digits + nd - s, s);
            n += s;
        }
    }
    return n;
}

//  --------------------------------------------------------------------------
//  A float as ClickHouse prints it: double-conversion's shortest form, an
//  exponent below 1e-6 and from 1e21.

size_t
dbt_ch_text_float (double v, bool single, char *out)
{
    if (isnan (v))
        return (size_t) snprintf (out, 40, "nan");
    if (isinf (v))
        return (size_t) snprintf (out, 40, v > 0 ? "inf" : "-inf");
    char sci [40];
    for (int digits = single ? 6 : 15; digits <= (single ? 9 : 17); digits++) {
        snprintf (sci, sizeof (sci), "%.*e", digits - 1, v);
        if (single ? strtof (sci, NULL) == (float) v : strtod (sci, NULL) == v)
            break;
    }
    //  Split "-d.ddde-XX" into sign, digits without trailing zeros, exponent
    const char *p = sci;
    size_t n = 0;
    if (*p == '-')
        out [n++] = *p++;
    char digits [24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits [nd++] = *p;
    while (nd > 1 && digits [nd - 1] == '0')
        nd--;
    int exp = *p == 'e' ? (int) strtol (p + 1, NULL, 10) : 0;
    if (exp >= -6 && exp < 21) {
        if (exp < 0) {
            out [n++] = '0';
            out [n++] = '.';
            for (int i = -1; i > exp; i--)
                out [n++] = '0';
            memcpy (out + n, digits, nd);
            n += nd;
        }
        else {
            for (size_t i = 0; i <= (size_t) exp; i++)
                out [n++] = i < nd ? digits [i] : '0';
            if (nd > (size_t) exp + 1) {
                out [n++] = '.';
                memcpy (out + n, digits + exp + 1, nd - (size_t) exp - 1);
                n += nd - (size_t) exp - 1;
            }
        }
    }
    else {
        out [n++] = digits [0];
        if (nd > 1) {
            out [n++] = '.';
            memcpy (out + n, digits + 1, nd - 1);
            n += nd - 1;
        }
        n += (size_t) snprintf (out + n, 12, "e%d", exp);
    }
    out [n] = 0;
    return n;
}

//  --------------------------------------------------------------------------
//  A DateTime64 value as TIMESTAMP or TIMESTAMPTZ text.

int
dbt_ch_text_datetime64 (int64_t ticks, int scale, dbt_coltype_t type, dbt_cell_daycache_t *cache,
                   char *out)
{
    int64_t unit = 1;
    for (int i = 0; i < scale; i++)
        unit *= 10;
    int64_t secs = ticks / unit, frac = ticks % unit;
    if (frac < 0) {
        secs--;
        frac += unit;
    }
    if (scale <= 6) {
        for (int i = scale; i < 6; i++)
            frac *= 10;
        return dbt_cell_unixtime (type, secs, (uint32_t) frac, cache, out, 48);
    }
    //  Finer than microseconds: all digits, no zone (written as text)
    int len = dbt_cell_unixtime (DBT_COL_TIMESTAMP, secs, 0, cache, out, 48);
    if (len < 0)
        return -1;
    return len + snprintf (out + len, 48 - (size_t) len, ".%0*" PRId64, scale, frac);
}

//  --------------------------------------------------------------------------
//  Append bytes quoted as ClickHouse writes strings in text.

void
dbt_ch_text_quoted (dbt_buf_t *out, const char *val, size_t len)
{
    dbt_buf_reserve (out, len + 2);
    dbt_buf_putc (out, '\'');
    for (size_t i = 0; i < len; i++) {
        char c = val [i];
        const char *esc = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == 0 ? "\\0"
                        : c == '\\' ? "\\\\" : c == '\'' ? "\\'" : NULL;
        if (esc)
            dbt_buf_append (out, esc, 2);
        else
            dbt_buf_putc (out, c);
    }
    dbt_buf_putc (out, '\'');
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

//  Text of a call into a static buffer.
#define S_TEXT(call) (buf [(call)] = 0, buf)

void
dbt_ch_text_test (bool verbose)
{
    char buf [64];
    assert (streq (S_TEXT (dbt_ch_text_u64 (0, buf)), "0"));
    assert (streq (S_TEXT (dbt_ch_text_u64 (UINT64_MAX, buf)), "18446744073709551615"));
    assert (streq (S_TEXT (dbt_ch_text_i64 (INT64_MIN, buf)), "-9223372036854775808"));
    assert (streq (S_TEXT (dbt_ch_text_i64 (-7, buf)), "-7"));
    assert (streq (S_TEXT (dbt_ch_text_i64 (INT64_MAX, buf)), "9223372036854775807"));
    //  Decimals: hi:lo two's complement
    assert (streq (S_TEXT (dbt_ch_text_decimal (0, 150, 2, buf)), "1.50"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (UINT64_MAX, (uint64_t) -150, 2, buf)), "-1.50"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (0, 0, 3, buf)), "0.000"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (0, 5, 0, buf)), "5"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (UINT64_MAX, UINT64_MAX, 4, buf)), "-0.0001"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (INT64_MAX, UINT64_MAX, 38, buf)),
                   "1.70141183460469231731687303715884105727"));
    assert (streq (S_TEXT (dbt_ch_text_decimal ((uint64_t) INT64_MIN, 0, 0, buf)),
                   "-170141183460469231731687303715884105728"));
    assert (streq (S_TEXT (dbt_ch_text_decimal (1, 0, 1, buf)), "1844674407370955161.6"));
    //  Floats the way the server prints them (measured on 18.16)
    const struct {
        double v;               //  value
        bool single;            //  Float32
        const char *text;       //  ClickHouse's text
    } floats [] = {
        { 1e20, false, "100000000000000000000" }, { 1e21, false, "1e21" },
        { 1e-6, false, "0.000001" }, { 1e-7, false, "1e-7" }, { 0.1, false, "0.1" },
        { -0.0, false, "-0" }, { 123456.789, false, "123456.789" },
        { 1.7976931348623157e308, false, "1.7976931348623157e308" },
        { 1.0 / 3, false, "0.3333333333333333" }, { -1.5e-5, false, "-0.000015" },
        { 1.5e300, false, "1.5e300" }, { NAN, false, "nan" }, { INFINITY, false, "inf" },
        { -INFINITY, true, "-inf" }, { 0.1f, true, "0.1" }, { 1e-7f, true, "1e-7" },
        { 16777216.0f, true, "16777216" }, { 100, false, "100" }
    };
    for (size_t i = 0; i < sizeof (floats) / sizeof (floats [0]); i++) {
        dbt_ch_text_float (floats [i].v, floats [i].single, buf);
        if (!streq (buf, floats [i].text)) {
            fprintf (stderr, "float %zu: '%s' want '%s'\n", i, buf, floats [i].text);
            assert (false);
        }
    }
    //  DateTime64
    assert (dbt_ch_text_datetime64 (-1, 3, DBT_COL_TIMESTAMPTZ, NULL, buf) == 26);
    assert (streq (buf, "1969-12-31 23:59:59.999+00"));
    assert (dbt_ch_text_datetime64 (1704164645123456LL, 6, DBT_COL_TIMESTAMP, NULL, buf) > 0);
    assert (streq (buf, "2024-01-02 03:04:05.123456"));
    assert (dbt_ch_text_datetime64 (1, 9, DBT_COL_TIMESTAMPTZ, NULL, buf) > 0);
    assert (streq (buf, "1970-01-01 00:00:00.000000001"));
    assert (dbt_ch_text_datetime64 (0, 0, DBT_COL_TIMESTAMPTZ, NULL, buf) > 0);
    assert (streq (buf, "1970-01-01 00:00:00+00"));
    //  Quoted strings
    dbt_buf_t out = { 0 };
    dbt_ch_text_quoted (&out, "a'b\\c\0\n\r\t\b\f\x01\xc3\xa9", 14);
    assert (streq (out.data, "'a\\'b\\\\c\\0\\n\\r\\t\\b\\f\x01\xc3\xa9'"));
    dbt_buf_reset (&out);
    dbt_ch_text_quoted (&out, "", 0);
    assert (streq (out.data, "''"));
    dbt_buf_free (&out);
    if (verbose)
        printf ("ch_text: ok\n");
}
#endif  //  DBT_SELFTEST
