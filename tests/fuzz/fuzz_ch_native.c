/*  =========================================================================
    fuzz_ch_native - fuzz target for the ClickHouse Native decoder

    Input: two control bytes, then the stream as a ClickHouse server would
    send it for FORMAT Native. The first control byte picks the block size
    limit (low two bits: 64 B, 4 KiB, 1 MiB, 64 MiB); the second seeds the
    sizes of the pieces the stream is fed in (1 byte up to 256 bytes, or a
    byte at a time). The stream is decoded twice, whole and in those
    pieces, into a text of its columns, rows and final outcome (clean end,
    the server's exception text, or an error): both must be the same, as
    the decoder promises the output does not depend on how bytes arrive.
    Each row must have one cell per column.

    Seed corpus: tests/fixtures/ch_native/ (valid_* decode to a clean
    end, broken_* end in an error or the server's exception). Build and
    run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

//  Size of the next piece: a small deterministic sequence from the seed.
static size_t
s_piece (uint32_t *state, uint8_t seed)
{
    if (seed == 0)
        return 1;
    *state = *state * 1103515245u + 12345u;
    uint32_t top = 1u + (seed & 0x0f) * 16u;        //  1 .. 241
    return 1 + (size_t) ((*state >> 16) % top);
}

//  Decode the stream fed in pieces (whole when seed is negative) into out:
//  columns, rows, and after *rows_len bytes "!" and how it ended. Returns
//  the final code.
static int
s_decode (const uint8_t *bytes, size_t len, int seed, size_t max_block, dbt_buf_t *out,
          size_t *rows_len, char *err)
{
    dbt_ch_native_t *dec = dbt_ch_native_new (max_block);
    dbt_buf_reset (out);
    err [0] = 0;
    uint32_t state = (uint32_t) seed;
    size_t fed = 0, ncols = 0;
    bool header = false;
    int rc;
    for (;;) {
        bool eof = fed == len;
        dbt_row_t row;
        rc = header ? dbt_ch_native_next (dec, &row, eof, err)
                    : dbt_ch_native_header (dec, eof, err);
        if (rc == DBT_CH_NEED) {
            assert (!eof);
            size_t n = seed < 0 ? len - fed : s_piece (&state, (uint8_t) seed);
            if (n > len - fed)
                n = len - fed;
            dbt_ch_native_feed (dec, bytes + fed, n);
            fed += n;
            continue;
        }
        if (!header && rc == 1) {
            header = true;
            const dbt_column_t *cols;
            assert (dbt_ch_native_columns (dec, &cols, &ncols) == 0);
            for (size_t i = 0; i < ncols; i++)
                dbt_buf_printf (out, "%s%s %s(%d,%d) %s", i ? "|" : "", cols [i].name,
                                dbt_coltype_name (cols [i].type), cols [i].precision,
                                cols [i].scale, cols [i].source_type);
            dbt_buf_putc (out, '\n');
            continue;
        }
        if (rc != 1)
            break;
        assert (row.ncols == ncols);
        for (size_t i = 0; i < row.ncols; i++) {
            if (i)
                dbt_buf_putc (out, '|');
            if (!row.vals [i]) {
                dbt_buf_putc (out, '~');
                continue;
            }
            dbt_buf_printf (out, "%zu:", row.lens [i]);
            dbt_buf_append (out, row.vals [i], row.lens [i]);
        }
        dbt_buf_putc (out, '\n');
    }
    assert (rc == 0 || rc == DBT_CH_EXCEPTION || rc < 0);
    *rows_len = out->len;
    if (rc == DBT_CH_EXCEPTION) {
        size_t rlen;
        const char *rest = dbt_ch_native_rest (dec, &rlen);
        dbt_buf_putc (out, '!');
        dbt_buf_append (out, rest, rlen);
        dbt_err_set (err, "server exception");
    }
    else
    if (rc < 0) {
        assert (err [0]);
        dbt_buf_printf (out, "!%s", err);
    }
    dbt_ch_native_destroy (&dec);
    return rc;
}

int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
{
    if (size < 2) {
        dbt_err_set (err, "input needs two control bytes");
        return -1;
    }
    static const size_t limits [] = { 64, 4096, 1024 * 1024, 64 * 1024 * 1024 };
    size_t max_block = limits [data [0] & 3];
    dbt_buf_t whole = { 0 }, pieces = { 0 };
    char err2 [DBT_ERRMSG_LEN];
    size_t wrows, prows;
    int rc = s_decode (data + 2, size - 2, -1, max_block, &whole, &wrows, err);
    int rc2 = s_decode (data + 2, size - 2, data [1], max_block, &pieces, &prows, err2);
    //  A block over the limit is refused as soon as more than the limit
    //  has arrived, so in pieces it may be refused before an error or the
    //  server's exception further on is seen: then both end after the same
    //  rows, in some error.
    bool same = rc2 == rc && pieces.len == whole.len
             && (whole.len == 0 || memcmp (pieces.data, whole.data, whole.len) == 0);
    if (!same && (rc == DBT_ETOOBIG || rc2 == DBT_ETOOBIG) && rc != 0 && rc2 != 0)
        same = wrows == prows && (wrows == 0 || memcmp (whole.data, pieces.data, wrows) == 0);
    if (!same) {
        fprintf (stderr, "fuzz_ch_native: whole: %d\n%.*s\n--- in pieces (seed %u): %d\n%.*s\n",
                 rc, (int) whole.len, whole.data ? whole.data : "", data [1], rc2,
                 (int) pieces.len, pieces.data ? pieces.data : "");
        assert (false);
    }
    dbt_buf_free (&whole);
    dbt_buf_free (&pieces);
    return rc == 0 ? 0 : -1;
}
