/*  =========================================================================
    dbt_ch_native - ClickHouse Native format decoder, incremental, row by row

    Decodes what a ClickHouse server sends for FORMAT Native into rows of
    canonical cells (dbt_driver.h) as the bytes arrive: the caller feeds
    bytes in and pulls rows out; when a row needs bytes not yet received,
    next returns DBT_CH_NEED and resumes where it stopped after more are
    fed. Memory is bounded by one Native block (the server's max_block_size
    rows), never by the result: a block larger than max_block bytes is
    refused. The stream's clean end is provable: it must end at a block
    boundary, and every block must repeat the first block's column names
    and types; error text the server appends in mid-stream is reported as
    DBT_CH_EXCEPTION, never as rows or as a clean end.

    Types (ClickHouse 18.16 and a few newer simple ones):
        Int8..Int64, UInt8..UInt32    BIGINT
        UInt64                        UBIGINT
        Float32, Float64              DOUBLE (shortest round-trip text)
        Decimal(P,S), Decimal32/64/128(S)   DECIMAL(P,S)
        Bool                          BOOLEAN
        Date, Date32                  DATE
        DateTime, DateTime('tz')      TIMESTAMPTZ (a Unix time: an instant)
        DateTime64(S[,'tz']), S <= 6  TIMESTAMPTZ (S > 6: TEXT)
        Nullable(T), LowCardinality(T), LowCardinality(Nullable(T))
                                      as T, NULL kept
        String, FixedString(N)        TEXT, bytes exact (trailing NULs kept)
        UUID, Enum8, Enum16, IPv4, IPv6, Nothing, Array(T), Tuple(...)
                                      TEXT in ClickHouse's text form
    Any other type (AggregateFunction, Map, Int128, ...) is an error that
    names the column: it cannot be skipped without knowing its layout.

    Threads: one decoder is used by one thread. Not thread-safe.
    =========================================================================
*/
#ifndef DBT_CH_NATIVE_H_INCLUDED
#define DBT_CH_NATIVE_H_INCLUDED

#include "dbt_driver.h"

//  Returned by dbt_ch_native_header and dbt_ch_native_next: more bytes
//  must be fed before the call can complete.
#define DBT_CH_NEED 2

//  Returned at the end of the stream when it went on with text that is not
//  a block: the server's exception ("Code: N, ..."). dbt_ch_native_rest
//  gives the text.
#define DBT_CH_EXCEPTION 3

typedef struct _dbt_ch_native_t dbt_ch_native_t;

//  Create a decoder that refuses blocks larger than max_block bytes.
dbt_ch_native_t *
    dbt_ch_native_new (size_t max_block);

//  Destroy; nulls the pointer. Safe on NULL.
void
    dbt_ch_native_destroy (dbt_ch_native_t **self_p);

//  Forget the stream (columns, bytes) to start a new one.
void
    dbt_ch_native_reset (dbt_ch_native_t *self);

//  Append len received bytes (copied).
void
    dbt_ch_native_feed (dbt_ch_native_t *self, const void *data, size_t len);

//  Read up to the first block's columns. eof says that no more bytes will
//  come (the response ended cleanly). Returns 1 when the columns are
//  known, 0 for an empty stream at eof (no columns), DBT_CH_NEED,
//  DBT_CH_EXCEPTION (at eof), or an error code with err set.
int
    dbt_ch_native_header (dbt_ch_native_t *self, bool eof, char *err);

//  The columns, once dbt_ch_native_header returned 1 (borrowed until the
//  next reset). Returns 0, or DBT_EINVAL when they are not known yet.
int
    dbt_ch_native_columns (dbt_ch_native_t *self, const dbt_column_t **cols, size_t *ncols);

//  Next row into *row (borrowed until the next call that feeds, reads or
//  resets). Returns 1 for a row, 0 at the clean end (only with eof),
//  DBT_CH_NEED, DBT_CH_EXCEPTION (only with eof), or an error code with
//  err set (garbled or truncated stream, a block over max_block bytes, a
//  type that cannot be read).
int
    dbt_ch_native_next (dbt_ch_native_t *self, dbt_row_t *row, bool eof, char *err);

//  After DBT_CH_EXCEPTION: the text that followed the last block
//  (borrowed until the next feed or reset).
const char *
    dbt_ch_native_rest (dbt_ch_native_t *self, size_t *len);


//  Map a ClickHouse type name to a column's canonical type, precision and
//  scale; sets col->source_type to a copy of name (caller frees). Returns
//  0, or DBT_EINVAL with err set for a type the decoder cannot read.
int
    dbt_ch_native_type (const char *name, dbt_column_t *col, char *err);

//  Self test of this module (canned streams, offline).
void
    dbt_ch_native_test (bool verbose);

#endif
