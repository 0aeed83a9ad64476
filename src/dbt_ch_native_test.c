/*  =========================================================================
    dbt_ch_native_test - self test of the ClickHouse Native decoder

    Offline: type names, and streams built here or captured from a
    ClickHouse 18.16 server, fed whole, a byte at a time and in odd-sized
    pieces (the output must not depend on how bytes arrive), cut short,
    followed by the server's exception text, garbled and mutated at random.
    Uses only the public API of dbt_ch_native.
    =========================================================================
*/
#include "dbt_classes.h"

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Building streams

static void
s_varint (dbt_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        dbt_buf_putc (b, (char) (v | 0x80));
        v >>= 7;
    }
    dbt_buf_putc (b, (char) v);
}

//  A string: varint length and bytes.
static void
s_str (dbt_buf_t *b, const char *s, size_t len)
{
    s_varint (b, len);
    dbt_buf_append (b, s, len);
}

static void
s_cstr (dbt_buf_t *b, const char *s)
{
    s_str (b, s, strlen (s));
}

//  A little-endian value of width bytes.
static void
s_le (dbt_buf_t *b, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        dbt_buf_putc (b, (char) (v >> (8 * i)));
}

//  A column header: name and type.
static void
s_col (dbt_buf_t *b, const char *name, const char *type)
{
    s_cstr (b, name);
    s_cstr (b, type);
}

//  A block of the "mixed" shape with rows first..first+n-1:
//  id Int64, s Nullable(String), d Decimal(12, 2), t DateTime, day Date,
//  f UInt8, x Float64, a Array(Nullable(Int32)), e Enum8('a' = 1, 'b\'' = -2)
static void
s_mixed_block (dbt_buf_t *b, int first, int n)
{
    s_varint (b, 9);
    s_varint (b, (uint64_t) n);
    s_col (b, "id", "Int64");
    for (int i = first; i < first + n; i++)
        s_le (b, (uint64_t) (int64_t) (i % 2 ? -i : i), 8);
    s_col (b, "s", "Nullable(String)");
    for (int i = first; i < first + n; i++)
        dbt_buf_putc (b, i % 3 == 0);
    for (int i = first; i < first + n; i++) {
        char text [32] = "";
        if (i % 3)
            snprintf (text, sizeof (text), "s\t%d\n", i);
        s_cstr (b, text);
    }
    s_col (b, "d", "Decimal(12, 2)");
    for (int i = first; i < first + n; i++)
        s_le (b, (uint64_t) (int64_t) (i * 101 - 150), 8);
    s_col (b, "t", "DateTime('Asia/Kolkata')");
    for (int i = first; i < first + n; i++)
        s_le (b, 1704164645u + (uint64_t) i, 4);
    s_col (b, "day", "Date");
    for (int i = first; i < first + n; i++)
        s_le (b, 19782u + (uint64_t) i, 2);
    s_col (b, "f", "UInt8");
    for (int i = first; i < first + n; i++)
        dbt_buf_putc (b, (char) (i % 2));
    s_col (b, "x", "Float64");
    for (int i = first; i < first + n; i++) {
        double x = i == 0 ? NAN : 1.0 / (i + 1);
        uint64_t bits;
        memcpy (&bits, &x, 8);
        s_le (b, bits, 8);
    }
    s_col (b, "a", "Array(Nullable(Int32))");
    uint64_t end = 0;
    for (int i = first; i < first + n; i++) {
        end += (uint64_t) (i % 3);
        s_le (b, end, 8);
    }
    for (uint64_t k = 0; k < end; k++)
        dbt_buf_putc (b, k % 2 == 1);
    for (uint64_t k = 0; k < end; k++)
        s_le (b, (uint64_t) (int64_t) (-(int) k), 4);
    s_col (b, "e", "Enum8('a' = 1, 'b\\'' = -2)");
    for (int i = first; i < first + n; i++)
        dbt_buf_putc (b, (char) (i % 2 ? 1 : -2));
}

//  A Native response captured from ClickHouse 18.16.1:
//  SELECT * FROM t with a Array(LowCardinality(String)),
//  t Tuple(LowCardinality(String), UInt8), n LowCardinality(Nullable(String))
//  holding (['x','y'], ('p',1), NULL) and ([], ('q',2), 'z').
static const unsigned char s_lowcard_capture [] = {
    0x03, 0x02, 0x01, 0x61, 0x1d, 0x41, 0x72, 0x72, 0x61, 0x79, 0x28, 0x4c, 0x6f, 0x77, 0x43, 0x61,
    0x72, 0x64, 0x69, 0x6e, 0x61, 0x6c, 0x69, 0x74, 0x79, 0x28, 0x53, 0x74, 0x72, 0x69, 0x6e, 0x67,
    0x29, 0x29, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x78, 0x01, 0x79, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x74, 0x24, 0x54, 0x75, 0x70, 0x6c,
    0x65, 0x28, 0x4c, 0x6f, 0x77, 0x43, 0x61, 0x72, 0x64, 0x69, 0x6e, 0x61, 0x6c, 0x69, 0x74, 0x79,
    0x28, 0x53, 0x74, 0x72, 0x69, 0x6e, 0x67, 0x29, 0x2c, 0x20, 0x55, 0x49, 0x6e, 0x74, 0x38, 0x29,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x70, 0x01, 0x71, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x02, 0x01, 0x6e, 0x20, 0x4c, 0x6f, 0x77, 0x43,
    0x61, 0x72, 0x64, 0x69, 0x6e, 0x61, 0x6c, 0x69, 0x74, 0x79, 0x28, 0x4e, 0x75, 0x6c, 0x6c, 0x61,
    0x62, 0x6c, 0x65, 0x28, 0x53, 0x74, 0x72, 0x69, 0x6e, 0x67, 0x29, 0x29, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x02
};

//  The text ClickHouse 18.16 appends when a query fails in mid-stream.
static const char s_exception [] =
    "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is "
    "non zero, e.what() = DB::Exception\n";

//  --------------------------------------------------------------------------
//  Decoding

//  Decode len bytes fed chunk bytes at a time into out: a line of columns
//  ("name TYPE(p,s) source_type|...") then a line per row ("a|b", NULL as
//  ~, bytes other than printable ASCII as \xHH). Returns the final code:
//  0 for the clean end, DBT_CH_EXCEPTION (its text appended to out after
//  "!"), or an error (its message after "!").
static int
s_decode (const void *bytes, size_t len, size_t chunk, size_t max_block, dbt_buf_t *out)
{
    dbt_ch_native_t *dec = dbt_ch_native_new (max_block);
    dbt_buf_reset (out);
    char err [DBT_ERRMSG_LEN] = "";
    size_t fed = 0;
    bool header = false;
    int rc;
    for (;;) {
        bool eof = fed == len;
        dbt_row_t row;
        rc = header ? dbt_ch_native_next (dec, &row, eof, err)
                    : dbt_ch_native_header (dec, eof, err);
        if (rc == DBT_CH_NEED) {
            assert (!eof);
            size_t n = len - fed < chunk ? len - fed : chunk;
            dbt_ch_native_feed (dec, (const char *) bytes + fed, n);
            fed += n;
            continue;
        }
        if (!header && rc == 1) {
            header = true;
            const dbt_column_t *cols;
            size_t ncols;
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
        for (size_t i = 0; i < row.ncols; i++) {
            if (i)
                dbt_buf_putc (out, '|');
            if (!row.vals [i]) {
                dbt_buf_putc (out, '~');
                continue;
            }
            for (size_t k = 0; k < row.lens [i]; k++) {
                unsigned char c = (unsigned char) row.vals [i][k];
                if (c < 0x20 || c >= 0x7f || c == '|' || c == '~')
                    dbt_buf_printf (out, "\\x%02x", c);
                else
                    dbt_buf_putc (out, (char) c);
            }
        }
        dbt_buf_putc (out, '\n');
    }
    if (rc == DBT_CH_EXCEPTION) {
        size_t rlen;
        const char *rest = dbt_ch_native_rest (dec, &rlen);
        dbt_buf_putc (out, '!');
        dbt_buf_append (out, rest, rlen);
    }
    else
    if (rc < 0)
        dbt_buf_printf (out, "!%s", err);
    dbt_ch_native_destroy (&dec);
    assert (dec == NULL);
    return rc;
}

//  Decode in several ways; all must agree. Returns the code, output in out.
static int
s_decode_all (const void *bytes, size_t len, size_t max_block, dbt_buf_t *out)
{
    int rc = s_decode (bytes, len, len ? len : 1, max_block, out);
    dbt_buf_t other = { 0 };
    const size_t chunks [] = { 1, 2, 7, 64, 1000 };
    for (size_t i = 0; i < sizeof (chunks) / sizeof (chunks [0]); i++) {
        int rc2 = s_decode (bytes, len, chunks [i], max_block, &other);
        if (rc2 != rc || other.len != out->len
        || (out->len && memcmp (other.data, out->data, out->len))) {
            fprintf (stderr, "chunk %zu: rc %d vs %d\n%s\n---\n%s\n", chunks [i], rc2, rc,
                     other.data, out->data);
            assert (false);
        }
    }
    dbt_buf_free (&other);
    return rc;
}

//  Check the type mapping of a name.
static void
s_type_check (const char *name, dbt_coltype_t type, int precision, int scale)
{
    char err [DBT_ERRMSG_LEN];
    dbt_column_t col = { 0 };
    int rc = dbt_ch_native_type (name, &col, err);
    if (rc || col.type != type || col.precision != precision || col.scale != scale) {
        fprintf (stderr, "type '%s': rc %d %s (%d,%d): %s\n", name, rc,
                 dbt_coltype_name (col.type), col.precision, col.scale, rc ? err : "");
        assert (false);
    }
    assert (streq (col.source_type, name));
    free (col.source_type);
}

static void
s_type_refused (const char *name)
{
    char err [DBT_ERRMSG_LEN];
    dbt_column_t col = { 0 };
    assert (dbt_ch_native_type (name, &col, err) == DBT_EINVAL);
    assert (col.source_type == NULL && strstr (err, "type '"));
}

void
dbt_ch_native_test (bool verbose)
{
    //  Type names
    s_type_check ("Int8", DBT_COL_BIGINT, 0, -1);
    s_type_check ("Int64", DBT_COL_BIGINT, 0, -1);
    s_type_check ("UInt32", DBT_COL_BIGINT, 0, -1);
    s_type_check ("UInt64", DBT_COL_UBIGINT, 0, -1);
    s_type_check ("Float32", DBT_COL_DOUBLE, 0, -1);
    s_type_check ("Float64", DBT_COL_DOUBLE, 0, -1);
    s_type_check ("Decimal(12, 2)", DBT_COL_DECIMAL, 12, 2);
    s_type_check ("Decimal(38,38)", DBT_COL_DECIMAL, 38, 38);
    s_type_check ("Decimal32(4)", DBT_COL_DECIMAL, 9, 4);
    s_type_check ("Decimal64(0)", DBT_COL_DECIMAL, 18, 0);
    s_type_check ("Decimal128(10)", DBT_COL_DECIMAL, 38, 10);
    s_type_check ("Bool", DBT_COL_BOOLEAN, 0, -1);
    s_type_check ("Date", DBT_COL_DATE, 0, -1);
    s_type_check ("Date32", DBT_COL_DATE, 0, -1);
    s_type_check ("DateTime", DBT_COL_TIMESTAMPTZ, 0, -1);
    s_type_check ("DateTime('Asia/Kolkata')", DBT_COL_TIMESTAMPTZ, 0, -1);
    s_type_check ("DateTime64(3)", DBT_COL_TIMESTAMPTZ, 0, -1);
    s_type_check ("DateTime64(6, 'UTC')", DBT_COL_TIMESTAMPTZ, 0, -1);
    s_type_check ("DateTime64(9, 'UTC')", DBT_COL_TEXT, 0, -1);
    s_type_check ("String", DBT_COL_TEXT, 0, -1);
    s_type_check ("FixedString(16)", DBT_COL_TEXT, 0, -1);
    s_type_check ("UUID", DBT_COL_TEXT, 0, -1);
    s_type_check ("IPv4", DBT_COL_TEXT, 0, -1);
    s_type_check ("IPv6", DBT_COL_TEXT, 0, -1);
    s_type_check ("Nothing", DBT_COL_TEXT, 0, -1);
    s_type_check ("Enum8('a' = 1, 'b' = 2)", DBT_COL_TEXT, 0, -1);
    s_type_check ("Enum16('it\\'s' = -1000, 'x''y' = 1000, '\\\\' = 0)", DBT_COL_TEXT, 0, -1);
    s_type_check ("Nullable(Int32)", DBT_COL_BIGINT, 0, -1);
    s_type_check ("Nullable(Decimal(24, 6))", DBT_COL_DECIMAL, 24, 6);
    s_type_check ("LowCardinality(String)", DBT_COL_TEXT, 0, -1);
    s_type_check ("LowCardinality(UInt64)", DBT_COL_UBIGINT, 0, -1);
    s_type_check ("LowCardinality(Nullable(Date))", DBT_COL_DATE, 0, -1);
    s_type_check ("LowCardinality(Nullable(Float64))", DBT_COL_DOUBLE, 0, -1);
    s_type_check ("Array(Int64)", DBT_COL_TEXT, 0, -1);
    s_type_check ("Array(Array(Nullable(String)))", DBT_COL_TEXT, 0, -1);
    s_type_check ("Array(LowCardinality(Nullable(String)))", DBT_COL_TEXT, 0, -1);
    s_type_check ("Tuple(UInt8, String, Nullable(Nothing))", DBT_COL_TEXT, 0, -1);
    s_type_check ("Tuple(a UInt8, b Array(String))", DBT_COL_TEXT, 0, -1);
    s_type_refused ("AggregateFunction(sum, UInt64)");
    s_type_refused ("Map(String, UInt64)");
    s_type_refused ("Int128");
    s_type_refused ("Nullable(Int64");
    s_type_refused ("Nullable()");
    s_type_refused ("Int64 x");
    s_type_refused ("");
    s_type_refused ("FixedString(0)");
    s_type_refused ("FixedString");
    s_type_refused ("Decimal(39, 2)");
    s_type_refused ("Decimal(5, 6)");
    s_type_refused ("Nullable");
    s_type_refused ("Enum8('a' = 300)");
    s_type_refused ("Enum8('a = 1)");
    s_type_refused ("LowCardinality(Array(String))");
    s_type_refused ("Array(Int64, String)");
    {
        //  Nesting deeper than 32 levels
        dbt_buf_t deep = { 0 };
        for (int i = 0; i < 40; i++)
            dbt_buf_puts (&deep, "Array(");
        dbt_buf_puts (&deep, "Int8");
        for (int i = 0; i < 40; i++)
            dbt_buf_putc (&deep, ')');
        s_type_refused (deep.data);
        dbt_buf_free (&deep);
    }

    {
        //  Damaged type names: refused or read, never a crash
        const char *names [] = {
            "Enum16('it\\'s' = -1000, 'x''y' = 1000, '\\x41' = 0)",
            "Tuple(a UInt8, b Array(LowCardinality(Nullable(String))))",
            "DateTime64(6, 'Asia/Kolkata')", "Nullable(Decimal(38, 10))"
        };
        uint64_t seed = 1;
        char name [128];
        for (int round = 0; round < 20000; round++) {
            const char *from = names [round % 4];
            size_t len = strlen (from);
            memcpy (name, from, len + 1);
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t) (seed >> 33) % len;
            name [at] = "'\\(),= \0xA9"[(seed >> 20) % 12];
            if (round % 3 == 0)
                name [(seed >> 40) % len] = 0;
            dbt_column_t col = { 0 };
            char err [DBT_ERRMSG_LEN];
            if (dbt_ch_native_type (name, &col, err) == 0)
                free (col.source_type);
        }
    }

    dbt_buf_t in = { 0 }, out = { 0 };
    const size_t big = 64 * 1024 * 1024;

    //  An empty stream: no columns
    assert (s_decode_all ("", 0, big, &out) == 0 && out.len == 0);

    //  Two blocks of the mixed shape
    s_mixed_block (&in, 0, 4);
    s_mixed_block (&in, 4, 3);
    assert (s_decode_all (in.data, in.len, big, &out) == 0);
    const char *mixed =
        "id BIGINT(0,-1) Int64|s TEXT(0,-1) Nullable(String)|d DECIMAL(12,2) Decimal(12, 2)"
        "|t TIMESTAMPTZ(0,-1) DateTime('Asia/Kolkata')|day DATE(0,-1) Date|f BIGINT(0,-1) UInt8"
        "|x DOUBLE(0,-1) Float64|a TEXT(0,-1) Array(Nullable(Int32))"
        "|e TEXT(0,-1) Enum8('a' = 1, 'b\\'' = -2)\n"
        "0|~|-1.50|2024-01-02 03:04:05+00|2024-02-29|0|NaN|[]|b'\n"
        "-1|s\\x091\\x0a|-0.49|2024-01-02 03:04:06+00|2024-03-01|1|0.5|[0]|a\n"
        "2|s\\x092\\x0a|0.52|2024-01-02 03:04:07+00|2024-03-02|0|0.3333333333333333|[NULL,-2]|b'\n"
        "-3|~|1.53|2024-01-02 03:04:08+00|2024-03-03|1|0.25|[]|a\n"
        "4|s\\x094\\x0a|2.54|2024-01-02 03:04:09+00|2024-03-04|0|0.2|[0]|b'\n"
        "-5|s\\x095\\x0a|3.55|2024-01-02 03:04:10+00|2024-03-05|1|0.16666666666666666|[NULL,-2]|a\n"
        "6|~|4.56|2024-01-02 03:04:11+00|2024-03-06|0|0.14285714285714285|[]|b'\n";
    if (!streq (out.data, mixed)) {
        fprintf (stderr, "got:\n%s\nwant:\n%s\n", out.data, mixed);
        assert (false);
    }

    //  The server's text after the first block: rows, then the exception
    size_t first = in.len;
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 4);
    first = in.len;
    dbt_buf_puts (&in, s_exception);
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_CH_EXCEPTION);
    assert (strstr (out.data, "\n-3|~|1.53|") && !strstr (out.data, "\n4|"));
    assert (streq (strchr (out.data, '!') + 1, s_exception));
    //  ...as the whole response (HTTP 200, then an error before any block)
    assert (s_decode_all (s_exception, strlen (s_exception), big, &out) == DBT_CH_EXCEPTION);
    assert (streq (out.data, "!Code: 395, e.displayText() = DB::Exception: Value passed to "
                   "'throwIf' function is non zero, e.what() = DB::Exception\n"));
    //  ...a short one (no column header could ever be read from it)
    assert (s_decode_all ("Code: 1, x", 10, big, &out) == DBT_CH_EXCEPTION);
    //  ...inside a block (an error while the block was written: never seen,
    //  the server fails between blocks): the block comes out short and the
    //  text is found, or its bytes are read as values and what follows is
    //  no block; either way an error, never a clean end
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 4);
    in.len -= 20;
    dbt_buf_puts (&in, "Code: 241, x\n");
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_CH_EXCEPTION);
    assert (strstr (out.data, "!Code: 241, x\n") && !strstr (out.data, "\n0|"));
    in.len -= 13;
    dbt_buf_puts (&in, "Code: 241, e.displayText() = DB::Exception: Memory limit\n");
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_ERROR);

    //  A stream cut short: inside a block, and inside its header
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 4);
    s_mixed_block (&in, 4, 3);
    for (size_t cut = first + 1; cut < in.len; cut += 97) {
        assert (s_decode (in.data, cut, cut, big, &out) == DBT_ERROR);
        assert (strstr (out.data, "!clickhouse: the result stream ended inside a block"));
        //  the first block's rows came, none of the second's
        assert (strstr (out.data, "\n-3|") && !strstr (out.data, "\n4|"));
    }
    assert (s_decode (in.data, 5, 5, big, &out) == DBT_ERROR);
    assert (s_decode (in.data, 1, 1, big, &out) == DBT_ERROR);
    //  Text that is not ClickHouse's exception after a block
    in.len = first;
    dbt_buf_puts (&in, "garbage that is not a block");
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_ERROR);
    assert (strstr (out.data, "!clickhouse: garbled result stream"));
    //  A second block with other columns
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 2);
    s_varint (&in, 1);
    s_varint (&in, 1);
    s_col (&in, "other", "UInt8");
    dbt_buf_putc (&in, 1);
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_ERROR);
    assert (strstr (out.data, "!clickhouse: garbled result stream (column count)"));
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 2);
    s_varint (&in, 9);
    s_varint (&in, 0);
    s_col (&in, "id", "Int32");
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_ERROR);
    assert (strstr (out.data, "other columns"));

    //  A header block without rows, then rows; empty blocks between
    dbt_buf_reset (&in);
    s_varint (&in, 2);
    s_varint (&in, 0);
    s_col (&in, "n", "Nullable(UInt64)");
    s_col (&in, "l", "LowCardinality(String)");
    for (int b = 0; b < 3; b++) {
        s_varint (&in, 2);
        s_varint (&in, (uint64_t) b);
        s_col (&in, "n", "Nullable(UInt64)");
        for (int i = 0; i < b; i++)
            dbt_buf_putc (&in, i == 1);
        for (int i = 0; i < b; i++)
            s_le (&in, UINT64_MAX - (uint64_t) i, 8);
        s_col (&in, "l", "LowCardinality(String)");
        if (b) {
            s_le (&in, 1, 8);               //  version
            s_le (&in, 0x0600 | 1, 8);      //  additional keys, UInt16 indexes
            s_le (&in, 2, 8);
            s_cstr (&in, "");
            s_cstr (&in, "key");
            s_le (&in, (uint64_t) b, 8);
            for (int i = 0; i < b; i++)
                s_le (&in, (uint64_t) (i + 1) % 2, 2);
        }
    }
    assert (s_decode_all (in.data, in.len, big, &out) == 0);
    assert (streq (out.data, "n UBIGINT(0,-1) Nullable(UInt64)|l TEXT(0,-1) LowCardinality(String)\n"
                   "18446744073709551615|key\n18446744073709551615|key\n~|\n"));

    //  Captured from ClickHouse 18.16: LowCardinality in arrays and tuples
    assert (s_decode_all (s_lowcard_capture, sizeof (s_lowcard_capture), big, &out) == 0);
    assert (streq (out.data, "a TEXT(0,-1) Array(LowCardinality(String))|t TEXT(0,-1) "
                   "Tuple(LowCardinality(String), UInt8)|n TEXT(0,-1) "
                   "LowCardinality(Nullable(String))\n"
                   "['x','y']|('p',1)|~\n[]|('q',2)|z\n"));

    //  Scalars of every kind, and their text inside an array
    static const struct {
        const char *type;       //  column type
        const char *bytes;      //  one value's bytes
        size_t len;             //  their length
        const char *text;       //  canonical text (NULL for NULL)
        const char *nested;     //  text inside an array
    } scalars [] = {
        { "Int8", "\x80", 1, "-128", "[-128]" },
        { "Int16", "\x00\x80", 2, "-32768", "[-32768]" },
        { "Int32", "\xff\xff\xff\x7f", 4, "2147483647", "[2147483647]" },
        { "Int64", "\x00\x00\x00\x00\x00\x00\x00\x80", 8, "-9223372036854775808",
          "[-9223372036854775808]" },
        { "UInt8", "\xff", 1, "255", "[255]" },
        { "UInt16", "\xff\xff", 2, "65535", "[65535]" },
        { "UInt32", "\xff\xff\xff\xff", 4, "4294967295", "[4294967295]" },
        { "UInt64", "\xff\xff\xff\xff\xff\xff\xff\xff", 8, "18446744073709551615",
          "[18446744073709551615]" },
        { "Float32", "\xcd\xcc\xcc\x3d", 4, "0.1", "[0.1]" },
        { "Float32", "\x00\x00\x80\xff", 4, "-Infinity", "[-inf]" },
        { "Float64", "\x00\x00\x00\x00\x00\x00\xf8\x3f", 8, "1.5", "[1.5]" },
        { "Float64", "\x00\x00\x00\x00\x00\x00\xf8\x7f", 8, "NaN", "[nan]" },
        { "Float64", "\x00\x00\x00\x00\x00\x00\x00\x80", 8, "-0", "[-0]" },
        { "Float64", "\x07\xd3\x8b\x35\xb7\x9d\xe1\x3e", 8, "8.4e-06", "[0.0000084]" },
        { "Float64", "\x00\xc8\x4e\x67\x6d\xc1\xfb\x43", 8, "3.2e+19", "[32000000000000000000]" },
        { "Float64", "\xb4\x9d\xd9\x79\x43\x78\xea\x44", 8, "1e+24", "[1e24]" },
        { "Decimal(9, 2)", "\x06\xff\xff\xff", 4, "-2.50", "[-2.50]" },
        { "Decimal(18, 18)", "\x01\x00\x00\x00\x00\x00\x00\x00", 8, "0.000000000000000001",
          "[0.000000000000000001]" },
        { "Decimal(38, 0)", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
          16, "170141183460469231731687303715884105727",
          "[170141183460469231731687303715884105727]" },
        { "Decimal(38, 2)", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80",
          16, "-1701411834604692317316873037158841057.28",
          "[-1701411834604692317316873037158841057.28]" },
        { "Decimal(38, 5)", "\x9c\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
          16, "-0.00100", "[-0.00100]" },
        { "Bool", "\x01", 1, "t", "[true]" },
        { "Date", "\xff\xff", 2, "2149-06-06", "['2149-06-06']" },
        { "Date32", "\x00\x00\xff\xff", 4, "1790-07-27", "['1790-07-27']" },
        { "DateTime", "\xff\xff\xff\xff", 4, "2106-02-07 06:28:15+00",
          "['2106-02-07 06:28:15']" },
        { "DateTime64(3, 'UTC')", "\xff\xff\xff\xff\xff\xff\xff\xff", 8,
          "1969-12-31 23:59:59.999+00", "['1969-12-31 23:59:59.999']" },
        { "DateTime64(9)", "\x01\x00\x00\x00\x00\x00\x00\x00", 8,
          "1970-01-01 00:00:00.000000001", "['1970-01-01 00:00:00.000000001']" },
        { "FixedString(4)", "a\0'\\", 4, "a\\x00'\\", "['a\\0\\'\\\\']" },
        { "UUID", "\xef\xcd\xab\x89\x67\x45\x23\x01\x10\x32\x54\x76\x98\xba\xdc\xfe", 16,
          "01234567-89ab-cdef-fedc-ba9876543210", "['01234567-89ab-cdef-fedc-ba9876543210']" },
        { "IPv4", "\x01\x02\xa8\xc0", 4, "192.168.2.1", "['192.168.2.1']" },
        { "IPv6", "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16, "2001:db8::1",
          "['2001:db8::1']" },
        { "Enum8('x' = 5)", "\x07", 1, "7", "[7]" },
        { "Nullable(Nothing)", "\x01" "0", 2, NULL, "[NULL]" },
    };
    for (size_t k = 0; k < sizeof (scalars) / sizeof (scalars [0]); k++) {
        for (int nested = 0; nested < 2; nested++) {
            dbt_buf_reset (&in);
            s_varint (&in, 1);
            s_varint (&in, 1);
            char *type = nested ? dbt_printf ("Array(%s)", scalars [k].type)
                                : dbt_strdup (scalars [k].type);
            s_col (&in, "v", type);
            if (nested)
                s_le (&in, 1, 8);
            dbt_buf_append (&in, scalars [k].bytes, scalars [k].len);
            int rc = s_decode_all (in.data, in.len, big, &out);
            const char *line = strchr (out.data, '\n');
            const char *want = nested ? scalars [k].nested : scalars [k].text;
            char expect [128];
            snprintf (expect, sizeof (expect), "%s\n", want ? want : "~");
            if (rc != 0 || !line || !streq (line + 1, expect)) {
                fprintf (stderr, "%s: rc %d got '%s' want '%s'\n", type, rc,
                         line ? line + 1 : out.data, expect);
                assert (false);
            }
            free (type);
        }
    }

    //  Garbled data is an error, never a crash or a row
    static const struct {
        const char *type;       //  column type
        const char *bytes;      //  two values' bytes
        size_t len;             //  their length
        const char *error;      //  expected message part
    } garbled [] = {
        { "Array(UInt8)", "\x02\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x05\x06", 18, "array offsets" },
        { "LowCardinality(String)", "\x01\0\0\0\0\0\0\0\x00\x06\0\0\0\0\0\0\x01\0\0\0\0\0\0\0"
          "\x00\x02\0\0\0\0\0\0\0\x00\x01", 35, "LowCardinality index" },
        { "LowCardinality(String)", "\x02\0\0\0\0\0\0\0", 8, "LowCardinality version" },
        { "LowCardinality(String)", "\x01\0\0\0\0\0\0\0\x00\x01\0\0\0\0\0\0"
          "\x01\0\0\0\0\0\0\0", 24, "LowCardinality keys" },
        { "String", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, "string length" },
        { "String", "\xff\xff\xff\xff\x0f", 5, "string length" },
    };
    for (size_t k = 0; k < sizeof (garbled) / sizeof (garbled [0]); k++) {
        dbt_buf_reset (&in);
        s_varint (&in, 1);
        s_varint (&in, 2);
        s_col (&in, "g", garbled [k].type);
        dbt_buf_append (&in, garbled [k].bytes, garbled [k].len);
        int rc = s_decode_all (in.data, in.len, 1024 * 1024, &out);
        if (rc != DBT_ERROR || !strstr (out.data, garbled [k].error)) {
            fprintf (stderr, "garbled %zu: rc %d: %s\n", k, rc, out.data);
            assert (false);
        }
    }

    //  A type that cannot be read names its column
    dbt_buf_reset (&in);
    s_varint (&in, 2);
    s_varint (&in, 1);
    s_col (&in, "x", "UInt8");
    dbt_buf_putc (&in, 1);
    s_col (&in, "agg", "AggregateFunction(sum, UInt64)");
    s_le (&in, 1, 8);
    assert (s_decode_all (in.data, in.len, big, &out) == DBT_ERROR);
    assert (strstr (out.data, "!clickhouse: column 'agg' has type 'AggregateFunction(sum, "
                    "UInt64)', which cannot be read"));

    //  A block larger than the limit, by its counts and by its bytes
    dbt_buf_reset (&in);
    s_varint (&in, 1);
    s_varint (&in, 100000);
    s_col (&in, "big", "UInt64");
    for (int i = 0; i < 100000; i++)
        s_le (&in, (uint64_t) i, 8);
    assert (s_decode_all (in.data, in.len, 1024 * 1024, &out) == 0);
    assert (s_decode (in.data, in.len, 4096, 256 * 1024, &out) == DBT_ETOOBIG);
    assert (strstr (out.data, "larger than"));
    //  ... also when it is fed in one piece (found by tests/fuzz/fuzz_ch_native)
    assert (s_decode (in.data, in.len, in.len, 256 * 1024, &out) == DBT_ETOOBIG);
    assert (strstr (out.data, "larger than"));
    dbt_buf_reset (&in);
    s_varint (&in, 1);
    s_varint (&in, 100000);
    s_col (&in, "big", "String");
    for (int i = 0; i < 100000; i++)
        s_cstr (&in, "0123456789");
    assert (s_decode (in.data, in.len, 4096, 256 * 1024, &out) == DBT_ETOOBIG);

    //  Random damage to a valid stream: an error or rows, never a crash
    dbt_buf_reset (&in);
    s_mixed_block (&in, 0, 5);
    s_mixed_block (&in, 5, 5);
    dbt_buf_t copy = { 0 };
    uint64_t seed = 42;
    for (int round = 0; round < 3000; round++) {
        dbt_buf_reset (&copy);
        dbt_buf_append (&copy, in.data, in.len);
        for (int m = 0; m < 1 + round % 4; m++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t) (seed >> 33) % copy.len;
            copy.data [at] = (char) (seed >> 20);
        }
        size_t len = round % 3 == 0 ? (size_t) (seed >> 40) % copy.len : copy.len;
        s_decode (copy.data, len, 1 + (size_t) (seed >> 50) % 300, 1024 * 1024, &out);
    }
    //  ...and to the captured LowCardinality stream
    for (int round = 0; round < 2000; round++) {
        dbt_buf_reset (&copy);
        dbt_buf_append (&copy, s_lowcard_capture, sizeof (s_lowcard_capture));
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t at = (size_t) (seed >> 33) % copy.len;
        copy.data [at] = (char) (seed >> 20);
        s_decode (copy.data, copy.len, 1 + (size_t) (seed >> 50) % 40, 1024 * 1024, &out);
    }
    dbt_buf_free (&copy);
    dbt_buf_free (&in);
    dbt_buf_free (&out);
    if (verbose)
        printf ("ch_native: ok\n");
}
#endif  //  DBT_SELFTEST
