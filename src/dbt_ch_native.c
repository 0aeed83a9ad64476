/*  =========================================================================
    dbt_ch_native - ClickHouse Native format decoder, incremental, row by row

    See dbt_ch_native.h. A Native stream (ClickHouse 18.16 over HTTP: no
    block info, no compression) is a sequence of blocks:

        varint ncols, varint nrows, then per column:
            string name, string type, then (when nrows > 0) the column:
            the LowCardinality versions of its type tree (UInt64 1 each,
            depth first), then its values (IDataType::serializeBinaryBulk):
              fixed width    little-endian values, nrows of them
              String         varint length + bytes, per value
              Nullable(T)    null map (a byte per value), then T's values
              Array(T)       cumulative UInt64 end offsets, then all elements
              Tuple(...)     each element column in turn
              LowCardinality UInt64 index type flags, UInt64 key count, the
                             keys (T's values), UInt64 row count, indexes
            (a string is a varint length and its bytes)

    18.16 writes a LowCardinality column of no values (inside empty
    arrays) in full: flags, one default key, a row count of 0. Later
    servers write nothing for it; this decoder follows 18.16.

    The decoder keeps the bytes of the current block from its start and
    parses it into offsets: a node of a column's type tree records where
    its values start and, for String, where each value starts, so cells are
    read in place and String cells are handed out without a copy. Parsing
    an incomplete block stops and resumes later at the node that ran out
    of bytes (stage fields), so a block costs one pass however it arrives.
    =========================================================================
*/
#include "dbt_classes.h"
#include <endian.h>
#include <arpa/inet.h>

//  Kinds of values.
typedef enum {
    S_INT,                      //  signed integer, width 1 to 8
    S_UINT,                     //  unsigned integer, width 1 to 8
    S_FLOAT32,
    S_FLOAT64,
    S_DECIMAL,                  //  width 4, 8 or 16; precision, scale
    S_BOOL,
    S_DATE,                     //  UInt16 days since 1970-01-01
    S_DATE32,                   //  Int32 days since 1970-01-01
    S_DATETIME,                 //  UInt32 seconds since the epoch
    S_DATETIME64,               //  Int64 ticks of 10^-scale seconds
    S_STRING,
    S_FIXEDSTRING,              //  width bytes
    S_UUID,                     //  two UInt64, high half first
    S_ENUM,                     //  Int8 or Int16 value with names
    S_IPV4,                     //  UInt32
    S_IPV6,                     //  16 bytes, network order
    S_NOTHING,                  //  one byte a value (only ever NULL)
    S_NULLABLE,
    S_ARRAY,
    S_TUPLE,
    S_LOWCARD
} s_kind_t;

//  Progress of a node in the current block
#define S_DONE 100

//  Deepest type nesting accepted
#define S_MAX_DEPTH 32

//  Most columns accepted in a block
#define S_MAX_COLS 100000

//  LowCardinality index type flags (DataTypeLowCardinality.cpp)
#define S_LC_TYPE_MASK 0xffULL
#define S_LC_GLOBAL_DICT (1ULL << 8)
#define S_LC_ADDITIONAL_KEYS (1ULL << 9)
#define S_LC_UPDATE_DICT (1ULL << 10)

typedef struct _s_type_t s_type_t;

//  One node of a column's type tree, with its decoding state.
struct _s_type_t {
    s_kind_t kind;              //  what the values are
    size_t width;               //  bytes a value, 0 when variable
    int precision;              //  Decimal total digits
    int scale;                  //  Decimal, DateTime64 fraction digits
    s_type_t **sub;             //  Nullable, Array, LowCardinality: [0]
                                //  (LowCardinality: the keys' type);
                                //  Tuple: the elements (owned)
    size_t nsub;                //  number of sub nodes
    int64_t *enum_values;       //  Enum values (owned)
    char **enum_names;          //  Enum names, unescaped (owned)
    size_t nenum;               //  number of Enum names
    bool lc_nullable;           //  LowCardinality(Nullable(T)): key 0 is NULL

    //  Decoding state in the current block
    int stage;                  //  progress, S_DONE when all read
    size_t count;               //  values in this block
    size_t off;                 //  offset of the values, null map, array
                                //  offsets or LowCardinality flags
    size_t inner;               //  Array elements, LowCardinality keys
    size_t idx_off;             //  LowCardinality: offset of the indexes
    size_t idx_width;           //  LowCardinality: bytes an index
    size_t end;                 //  offset after the node's data
    size_t scan;                //  String: offset of the next value
    size_t *starts;             //  String: offset of each value's bytes
    size_t *lens;               //  String: length of each value
    size_t cap;                 //  String: room in starts and lens
    dbt_cell_daycache_t days;   //  Date, DateTime: the last day's text
};

struct _dbt_ch_native_t {
    dbt_buf_t in;               //  bytes from the current block's start
    size_t max_block;           //  largest block accepted, bytes

    //  Columns, from the first block
    bool have_header;           //  the first block's header is complete
    dbt_column_t *cols;         //  names and canonical types (owned)
    s_type_t **types;           //  decoders (owned)
    size_t ncols;               //  number of columns (parsed so far, then all)

    //  Current block
    int stage;                  //  0 counts, 1 column header, 2 column data
    size_t bcols;               //  columns in this block
    size_t brows;               //  rows in this block
    size_t col;                 //  column being read
    size_t pos;                 //  offset of the next byte to read
    bool ready;                 //  the block is read: rows can be handed out
    size_t row;                 //  next row to hand out
    bool exception;             //  text follows the last block
    size_t exc_off;             //  offset of that text

    //  Output
    const char **vals;          //  cells handed out (per column)
    size_t *lens;               //  cell lengths
    dbt_buf_t *cells;           //  per-column text of converted cells
};

//  --------------------------------------------------------------------------
//  Type names

static void
s_type_destroy (s_type_t **self_p)
{
    s_type_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsub; i++)
        s_type_destroy (&self->sub [i]);
    free (self->sub);
    for (size_t i = 0; i < self->nenum; i++)
        free (self->enum_names [i]);
    free (self->enum_names);
    free (self->enum_values);
    free (self->starts);
    free (self->lens);
    free (self);
    *self_p = NULL;
}

static s_type_t *
s_type_new (s_kind_t kind, size_t width)
{
    s_type_t *self = (s_type_t *) dbt_malloc (sizeof (s_type_t));
    self->kind = kind;
    self->width = width;
    return self;
}

//  Add a sub node.
static void
s_type_add (s_type_t *self, s_type_t *sub)
{
    self->sub = (s_type_t **) dbt_realloc (self->sub, (self->nsub + 1) * sizeof (s_type_t *));
    self->sub [self->nsub++] = sub;
}

static void
s_skip_spaces (const char **p)
{
    while (**p == ' ')
        (*p)++;
}

//  Length of the identifier at p ([A-Za-z0-9_]*).
static size_t
s_ident_len (const char *p)
{
    size_t n = 0;
    while (isalnum ((unsigned char) p [n]) || p [n] == '_')
        n++;
    return n;
}

//  Read a (possibly negative) integer at *p. Returns 0 or -1.
static int
s_read_int (const char **p, int64_t min, int64_t max, int64_t *value)
{
    s_skip_spaces (p);
    const char *start = *p;
    if (**p == '-')
        (*p)++;
    while (isdigit ((unsigned char) **p))
        (*p)++;
    char num [24];
    size_t len = (size_t) (*p - start);
    if (len == 0 || len >= sizeof (num))
        return -1;
    memcpy (num, start, len);
    num [len] = 0;
    return dbt_parse_int64 (num, min, max, value);
}

//  Read a quoted string at *p ('...' with backslash escapes, as ClickHouse
//  writes them in type names) into a new string. Returns it or NULL.
static char *
s_read_quoted (const char **p)
{
    s_skip_spaces (p);
    if (**p != '\'')
        return NULL;
    (*p)++;
    dbt_buf_t buf = { 0 };
    dbt_buf_reserve (&buf, 16);
    for (;;) {
        //  Never step past the terminating NUL
        char c = **p;
        if (c == 0 || (c == '\\' && (*p) [1] == 0)) {
            dbt_buf_free (&buf);
            return NULL;
        }
        (*p)++;
        if (c == '\'') {
            if (**p != '\'')
                break;
            (*p)++;             //  '' is a quote
        }
        else
        if (c == '\\') {
            c = *(*p)++;
            switch (c) {
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case '0': c = 0; break;
                case 'x':
                    if (isxdigit ((unsigned char) (*p) [0]) && isxdigit ((unsigned char) (*p) [1])) {
                        char hex [3] = { (*p) [0], (*p) [1], 0 };
                        c = (char) strtol (hex, NULL, 16);
                        *p += 2;
                    }
                    break;
                default:
                    break;      //  \\ \' and any other: the character
            }
        }
        dbt_buf_putc (&buf, c);
    }
    return dbt_buf_take (&buf);
}

//  Expect character c at *p (after spaces). Returns 0 or -1.
static int
s_expect (const char **p, char c)
{
    s_skip_spaces (p);
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

static s_type_t *s_type_parse (const char **p, int depth, char *err);

//  Enum8/16 arguments: 'name' = value, ... ')'. Returns 0 or -1.
static int
s_parse_enum (s_type_t *self, const char **p)
{
    int64_t min = self->width == 1 ? INT8_MIN : INT16_MIN;
    int64_t max = self->width == 1 ? INT8_MAX : INT16_MAX;
    for (;;) {
        char *name = s_read_quoted (p);
        int64_t value;
        if (!name || s_expect (p, '=') || s_read_int (p, min, max, &value)) {
            free (name);
            return -1;
        }
        self->enum_names = (char **) dbt_realloc (self->enum_names,
                                                  (self->nenum + 1) * sizeof (char *));
        self->enum_values = (int64_t *) dbt_realloc (self->enum_values,
                                                     (self->nenum + 1) * sizeof (int64_t));
        self->enum_names [self->nenum] = name;
        self->enum_values [self->nenum] = value;
        self->nenum++;
        s_skip_spaces (p);
        if (**p == ')')
            return 0;
        if (s_expect (p, ','))
            return -1;
    }
}

//  Fixed-width kinds by name.
static const struct {
    const char *name;           //  type name
    s_kind_t kind;              //  kind
    size_t width;               //  bytes a value
} s_simple [] = {
    { "Int8", S_INT, 1 }, { "Int16", S_INT, 2 }, { "Int32", S_INT, 4 }, { "Int64", S_INT, 8 },
    { "UInt8", S_UINT, 1 }, { "UInt16", S_UINT, 2 }, { "UInt32", S_UINT, 4 },
    { "UInt64", S_UINT, 8 }, { "Float32", S_FLOAT32, 4 }, { "Float64", S_FLOAT64, 8 },
    { "Bool", S_BOOL, 1 }, { "Date", S_DATE, 2 }, { "Date32", S_DATE32, 4 },
    { "String", S_STRING, 0 }, { "UUID", S_UUID, 16 }, { "IPv4", S_IPV4, 4 },
    { "IPv6", S_IPV6, 16 }, { "Nothing", S_NOTHING, 1 }
};

//  Parse the arguments of a parameterised type (after its '('); the
//  closing ')' is left at *p. Returns 0 or -1 with err set.
static int
s_parse_args (s_type_t *self, const char *name, size_t nlen, const char **p, int depth,
              char *err)
{
    int64_t a = 0, b = 0;
#define S_IS(word) (nlen == strlen (word) && strncmp (name, word, nlen) == 0)
    if (S_IS ("Nullable") || S_IS ("Array") || S_IS ("LowCardinality") || S_IS ("Tuple")) {
        for (;;) {
            s_skip_spaces (p);
            //  A named tuple element: "name Type"
            size_t id = s_ident_len (*p);
            if (S_IS ("Tuple") && id && (*p) [id] == ' ') {
                const char *after = *p + id;
                s_skip_spaces (&after);
                if (isalpha ((unsigned char) *after))
                    *p = after;
            }
            s_type_t *sub = s_type_parse (p, depth + 1, err);
            if (!sub)
                return -1;
            s_type_add (self, sub);
            s_skip_spaces (p);
            if (**p != ',' || !S_IS ("Tuple"))
                break;
            (*p)++;
        }
        return 0;
    }
    if (S_IS ("FixedString")) {
        if (s_read_int (p, 1, INT32_MAX, &a))
            goto bad;
        self->width = (size_t) a;
        return 0;
    }
    if (S_IS ("Decimal")) {
        if (s_read_int (p, 1, 38, &a) || s_expect (p, ',') || s_read_int (p, 0, a, &b))
            goto bad;
        self->precision = (int) a;
        self->scale = (int) b;
        self->width = a <= 9 ? 4 : a <= 18 ? 8 : 16;
        return 0;
    }
    if (S_IS ("Decimal32") || S_IS ("Decimal64") || S_IS ("Decimal128")) {
        int precision = S_IS ("Decimal32") ? 9 : S_IS ("Decimal64") ? 18 : 38;
        if (s_read_int (p, 0, precision, &b))
            goto bad;
        self->precision = precision;
        self->scale = (int) b;
        self->width = precision == 9 ? 4 : precision == 18 ? 8 : 16;
        return 0;
    }
    if (S_IS ("DateTime")) {
        char *zone = s_read_quoted (p);
        if (!zone)
            goto bad;
        free (zone);            //  an instant is the same in every zone
        return 0;
    }
    if (S_IS ("DateTime64")) {
        if (s_read_int (p, 0, 9, &a))
            goto bad;
        self->scale = (int) a;
        s_skip_spaces (p);
        if (**p == ',') {
            (*p)++;
            char *zone = s_read_quoted (p);
            if (!zone)
                goto bad;
            free (zone);
        }
        return 0;
    }
    if (S_IS ("Enum8") || S_IS ("Enum16")) {
        if (s_parse_enum (self, p))
            goto bad;
        return 0;
    }
#undef S_IS
bad:
    dbt_err_set (err, "cannot read the arguments of type %.*s", (int) nlen, name);
    return -1;
}

//  Parse the type name at *p into a new tree. Returns NULL with err set
//  for a type the decoder cannot read or a malformed name.
static s_type_t *
s_type_parse (const char **p, int depth, char *err)
{
    s_skip_spaces (p);
    const char *name = *p;
    size_t nlen = s_ident_len (name);
    if (nlen == 0 || depth > S_MAX_DEPTH) {
        dbt_err_set (err, "malformed type name");
        return NULL;
    }
    *p += nlen;
    bool args = **p == '(';
    for (size_t i = 0; !args && i < sizeof (s_simple) / sizeof (s_simple [0]); i++)
        if (strlen (s_simple [i].name) == nlen && strncmp (name, s_simple [i].name, nlen) == 0)
            return s_type_new (s_simple [i].kind, s_simple [i].width);
    static const struct {
        const char *name;       //  type name
        s_kind_t kind;          //  kind
        size_t width;           //  bytes a value (0: from the arguments)
        bool need_args;         //  the name takes arguments
    } parameterised [] = {
        { "Nullable", S_NULLABLE, 0, true }, { "Array", S_ARRAY, 0, true },
        { "Tuple", S_TUPLE, 0, true }, { "LowCardinality", S_LOWCARD, 0, true },
        { "FixedString", S_FIXEDSTRING, 0, true }, { "Decimal", S_DECIMAL, 0, true },
        { "Decimal32", S_DECIMAL, 4, true }, { "Decimal64", S_DECIMAL, 8, true },
        { "Decimal128", S_DECIMAL, 16, true }, { "DateTime", S_DATETIME, 4, false },
        { "DateTime64", S_DATETIME64, 8, true }, { "Enum8", S_ENUM, 1, true },
        { "Enum16", S_ENUM, 2, true }
    };
    s_type_t *self = NULL;
    for (size_t i = 0; i < sizeof (parameterised) / sizeof (parameterised [0]); i++)
        if (strlen (parameterised [i].name) == nlen
        &&  strncmp (name, parameterised [i].name, nlen) == 0
        && (args || !parameterised [i].need_args))
            self = s_type_new (parameterised [i].kind, parameterised [i].width);
    if (!self) {
        dbt_err_set (err, "type %.*s is not supported", (int) nlen, name);
        return NULL;
    }
    if (args) {
        (*p)++;
        if (s_parse_args (self, name, nlen, p, depth, err) || s_expect (p, ')')) {
            if (!*err)
                dbt_err_set (err, "malformed type name");
            s_type_destroy (&self);
            return NULL;
        }
    }
    if (self->kind == S_LOWCARD) {
        //  The keys of LowCardinality(Nullable(T)) are T's; key 0 is NULL.
        s_type_t *inner = self->sub [0];
        if (inner->kind == S_NULLABLE) {
            self->sub [0] = inner->sub [0];
            inner->nsub = 0;
            s_type_destroy (&inner);
            self->lc_nullable = true;
        }
        if (self->sub [0]->kind == S_NULLABLE || self->sub [0]->kind == S_LOWCARD
        ||  self->sub [0]->kind == S_ARRAY || self->sub [0]->kind == S_TUPLE) {
            dbt_err_set (err, "malformed LowCardinality type");
            s_type_destroy (&self);
        }
    }
    return self;
}

//  Parse a whole type name. Returns a tree or NULL with err set.
static s_type_t *
s_type_of (const char *name, char *err)
{
    err [0] = 0;
    const char *p = name;
    s_type_t *type = s_type_parse (&p, 0, err);
    if (type)
        s_skip_spaces (&p);
    if (type && *p) {
        dbt_err_set (err, "malformed type name");
        s_type_destroy (&type);
    }
    return type;
}

//  Set a column's canonical type from a type tree.
static void
s_canonical (const s_type_t *t, dbt_column_t *col)
{
    while (t->kind == S_NULLABLE || t->kind == S_LOWCARD)
        t = t->sub [0];
    col->precision = 0;
    col->scale = -1;
    switch (t->kind) {
        case S_INT:
            col->type = DBT_COL_BIGINT;
            break;
        case S_UINT:
            col->type = t->width == 8 ? DBT_COL_UBIGINT : DBT_COL_BIGINT;
            break;
        case S_FLOAT32:
        case S_FLOAT64:
            col->type = DBT_COL_DOUBLE;
            break;
        case S_DECIMAL:
            col->type = DBT_COL_DECIMAL;
            col->precision = t->precision;
            col->scale = t->scale;
            break;
        case S_BOOL:
            col->type = DBT_COL_BOOLEAN;
            break;
        case S_DATE:
        case S_DATE32:
            col->type = DBT_COL_DATE;
            break;
        case S_DATETIME:
            col->type = DBT_COL_TIMESTAMPTZ;
            break;
        case S_DATETIME64:
            col->type = t->scale <= 6 ? DBT_COL_TIMESTAMPTZ : DBT_COL_TEXT;
            break;
        default:
            col->type = DBT_COL_TEXT;
            break;
    }
}

//  --------------------------------------------------------------------------
//  Map a type name to a canonical column type.

int
dbt_ch_native_type (const char *name, dbt_column_t *col, char *err)
{
    char inner [DBT_ERRMSG_LEN];
    s_type_t *type = s_type_of (name, inner);
    if (!type) {
        dbt_err_set (err, "type '%s': %s", name, inner);
        return DBT_EINVAL;
    }
    s_canonical (type, col);
    col->source_type = dbt_strdup (name);
    s_type_destroy (&type);
    return 0;
}

//  --------------------------------------------------------------------------
//  Reading bytes

//  Bytes past offset pos.
static size_t
s_avail (const dbt_ch_native_t *self, size_t pos)
{
    return pos < self->in.len ? self->in.len - pos : 0;
}

static const unsigned char *
s_at (const dbt_ch_native_t *self, size_t pos)
{
    return (const unsigned char *) self->in.data + pos;
}

static uint16_t
s_u16 (const unsigned char *p)
{
    uint16_t v;
    memcpy (&v, p, 2);
    return le16toh (v);
}

static uint32_t
s_u32 (const unsigned char *p)
{
    uint32_t v;
    memcpy (&v, p, 4);
    return le32toh (v);
}

static uint64_t
s_u64 (const unsigned char *p)
{
    uint64_t v;
    memcpy (&v, p, 8);
    return le64toh (v);
}

//  Signed and unsigned value of width (1, 2, 4 or 8) bytes at p.
static int64_t
s_int_at (const unsigned char *p, size_t width)
{
    switch (width) {
        case 1:  return (int8_t) p [0];
        case 2:  return (int16_t) s_u16 (p);
        case 4:  return (int32_t) s_u32 (p);
        default: return (int64_t) s_u64 (p);
    }
}

static uint64_t
s_uint_at (const unsigned char *p, size_t width)
{
    switch (width) {
        case 1:  return p [0];
        case 2:  return s_u16 (p);
        case 4:  return s_u32 (p);
        default: return s_u64 (p);
    }
}

//  Read a varint (LEB128) at *pos. Returns 1 and advances, 0 when more
//  bytes are needed, -1 when malformed (longer than 10 bytes).
static int
s_varint (const dbt_ch_native_t *self, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    size_t avail = s_avail (self, *pos);
    const unsigned char *p = s_at (self, *pos);
    for (size_t i = 0; i < 10; i++) {
        if (i == avail)
            return 0;
        v |= (uint64_t) (p [i] & 0x7f) << (7 * i);
        if (!(p [i] & 0x80)) {
            *value = v;
            *pos += i + 1;
            return 1;
        }
    }
    return -1;
}

//  Read a string (varint length + bytes) at *pos, at most max bytes.
//  Returns 1 and advances, 0 when more bytes are needed, -1 when malformed.
static int
s_string (const dbt_ch_native_t *self, size_t *pos, size_t max, size_t *start, size_t *len)
{
    size_t p = *pos;
    uint64_t n;
    int rc = s_varint (self, &p, &n);
    if (rc <= 0)
        return rc;
    if (n > max)
        return -1;
    if (s_avail (self, p) < n)
        return 0;
    *start = p;
    *len = (size_t) n;
    *pos = p + (size_t) n;
    return 1;
}

//  Check that count values of width bytes are there at pos. Returns 1,
//  0 when more bytes are needed, or DBT_ETOOBIG with err set.
static int
s_need (const dbt_ch_native_t *self, size_t pos, size_t count, size_t width, char *err)
{
    if (width && count > self->max_block / width) {
        dbt_err_set (err, "clickhouse: a result block is larger than %zu MB",
                     self->max_block >> 20);
        return DBT_ETOOBIG;
    }
    return s_avail (self, pos) >= count * width ? 1 : 0;
}

//  --------------------------------------------------------------------------
//  Column data

//  Forget a tree's progress in the previous block.
static void
s_type_reset (s_type_t *t)
{
    t->stage = 0;
    for (size_t i = 0; i < t->nsub; i++)
        s_type_reset (t->sub [i]);
}

//  Number of LowCardinality nodes in a tree (each has a version in the
//  column's prefix).
static size_t
s_lowcard_count (const s_type_t *t)
{
    size_t n = t->kind == S_LOWCARD;
    for (size_t i = 0; i < t->nsub; i++)
        n += s_lowcard_count (t->sub [i]);
    return n;
}

//  Error for malformed column data.
static int
s_garbled (const char *what, char *err)
{
    dbt_err_set (err, "clickhouse: garbled result stream (%s)", what);
    return DBT_ERROR;
}

//  Read the String values of t: resumes at t->scan.
static int
s_data_string (dbt_ch_native_t *self, s_type_t *t, char *err)
{
    if (t->stage == 1) {
        t->scan = t->off;
        t->inner = 0;           //  values scanned
        t->stage = 2;
    }
    while (t->inner < t->count) {
        if (t->inner == t->cap) {
            //  Grow as values arrive, not by the (untrusted) count
            size_t want = t->cap ? t->cap * 2 : 64;
            if (want > t->count)
                want = t->count;
            t->starts = (size_t *) dbt_realloc (t->starts, want * sizeof (size_t));
            t->lens = (size_t *) dbt_realloc (t->lens, want * sizeof (size_t));
            t->cap = want;
        }
        int rc = s_string (self, &t->scan, self->max_block, &t->starts [t->inner],
                           &t->lens [t->inner]);
        if (rc < 0)
            return s_garbled ("string length", err);
        if (rc == 0)
            return 0;
        t->inner++;
    }
    t->end = t->scan;
    return 1;
}

//  Read count values of t starting at *pos (on the first call; later calls
//  resume). Returns 1 with *pos after the values, 0 when more bytes are
//  needed, or an error code with err set.
static int
s_data (dbt_ch_native_t *self, s_type_t *t, size_t count, size_t *pos, char *err)
{
    if (t->stage == S_DONE) {
        *pos = t->end;
        return 1;
    }
    if (t->stage == 0) {
        t->count = count;
        t->off = *pos;
        t->stage = 1;
    }
    int rc;
    size_t p;
    switch (t->kind) {
        case S_STRING:
            rc = s_data_string (self, t, err);
            if (rc <= 0)
                return rc;
            break;

        case S_NULLABLE:
            if (t->stage == 1) {
                rc = s_need (self, t->off, count, 1, err);
                if (rc <= 0)
                    return rc;
                t->stage = 2;
            }
            p = t->off + t->count;
            rc = s_data (self, t->sub [0], t->count, &p, err);
            if (rc <= 0)
                return rc;
            t->end = p;
            break;

        case S_ARRAY:
            if (t->stage == 1) {
                rc = s_need (self, t->off, t->count, 8, err);
                if (rc <= 0)
                    return rc;
                //  End offsets never go down; their last is the element count.
                uint64_t last = 0;
                for (size_t i = 0; i < t->count; i++) {
                    uint64_t end = s_u64 (s_at (self, t->off + 8 * i));
                    if (end < last || end > self->max_block)
                        return s_garbled ("array offsets", err);
                    last = end;
                }
                t->inner = (size_t) last;
                t->stage = 2;
            }
            p = t->off + 8 * t->count;
            rc = s_data (self, t->sub [0], t->inner, &p, err);
            if (rc <= 0)
                return rc;
            t->end = p;
            break;

        case S_TUPLE:
            p = t->off;
            for (size_t i = 0; i < t->nsub; i++) {
                rc = s_data (self, t->sub [i], t->count, &p, err);
                if (rc <= 0)
                    return rc;
            }
            t->end = p;
            break;

        case S_LOWCARD:
            if (t->stage == 1) {
                //  Index type flags, then the number of keys
                rc = s_need (self, t->off, 2, 8, err);
                if (rc <= 0)
                    return rc;
                uint64_t flags = s_u64 (s_at (self, t->off));
                uint64_t nkeys = s_u64 (s_at (self, t->off + 8));
                if ((flags & ~(S_LC_TYPE_MASK | S_LC_ADDITIONAL_KEYS | S_LC_UPDATE_DICT))
                ||  (flags & S_LC_TYPE_MASK) > 3 || !(flags & S_LC_ADDITIONAL_KEYS)
                ||  nkeys > self->max_block || (nkeys == 0 && t->count > 0))
                    return s_garbled ("LowCardinality keys", err);
                t->idx_width = (size_t) 1 << (flags & S_LC_TYPE_MASK);
                t->inner = (size_t) nkeys;
                t->stage = 2;
            }
            if (t->stage == 2) {
                p = t->off + 16;
                rc = s_data (self, t->sub [0], t->inner, &p, err);
                if (rc <= 0)
                    return rc;
                t->idx_off = p + 8;
                t->stage = 3;
            }
            rc = s_need (self, t->idx_off - 8, 1, 8, err);
            if (rc > 0)
                rc = s_need (self, t->idx_off, t->count, t->idx_width, err);
            if (rc <= 0)
                return rc;
            if (s_u64 (s_at (self, t->idx_off - 8)) != t->count)
                return s_garbled ("LowCardinality row count", err);
            for (size_t i = 0; i < t->count; i++) {
                uint64_t key = s_uint_at (s_at (self, t->idx_off + i * t->idx_width),
                                          t->idx_width);
                if (key >= t->inner)
                    return s_garbled ("LowCardinality index", err);
            }
            t->end = t->idx_off + t->count * t->idx_width;
            break;

        default:
            rc = s_need (self, t->off, t->count, t->width, err);
            if (rc <= 0)
                return rc;
            t->end = t->off + t->count * t->width;
            break;
    }
    t->stage = S_DONE;
    *pos = t->end;
    return 1;
}

//  --------------------------------------------------------------------------
//  Cell text

//  Name of Enum value v (static for the tree's life), or NULL.
static const char *
s_enum_name (const s_type_t *t, int64_t v)
{
    for (size_t i = 0; i < t->nenum; i++)
        if (t->enum_values [i] == v)
            return t->enum_names [i];
    return NULL;
}

//  The key (dictionary index) of LowCardinality value i.
static size_t
s_lowcard_key (const dbt_ch_native_t *self, const s_type_t *t, size_t i)
{
    return (size_t) s_uint_at (s_at (self, t->idx_off + i * t->idx_width), t->idx_width);
}

//  Text of a scalar value i of t (not String, FixedString, Enum or a
//  composite) into out (at least 64 bytes); top-level cells use canonical
//  text, nested ones ClickHouse's. Returns the length or -1.
static int
s_scalar_text (const dbt_ch_native_t *self, s_type_t *t, size_t i, bool nested, char *out)
{
    const unsigned char *p = s_at (self, t->off + i * t->width);
    switch (t->kind) {
        case S_INT:
            return (int) dbt_ch_text_i64 (s_int_at (p, t->width), out);
        case S_UINT:
            return (int) dbt_ch_text_u64 (s_uint_at (p, t->width), out);
        case S_BOOL:
            return snprintf (out, 64, "%s", nested ? (*p ? "true" : "false") : (*p ? "t" : "f"));
        case S_FLOAT32: {
            float v;
            memcpy (&v, p, 4);
            if (nested)
                return (int) dbt_ch_text_float (v, true, out);
            return dbt_cell_float (v, out, 64);
        }
        case S_FLOAT64: {
            double v;
            memcpy (&v, p, 8);
            if (nested)
                return (int) dbt_ch_text_float (v, false, out);
            return dbt_cell_double (v, out, 64);
        }
        case S_DECIMAL: {
            //  A two's complement 128-bit value, narrower ones sign-extended
            uint64_t lo = t->width == 16 ? s_u64 (p) : (uint64_t) s_int_at (p, t->width);
            uint64_t hi = t->width == 16 ? s_u64 (p + 8) : lo >> 63 ? UINT64_MAX : 0;
            return (int) dbt_ch_text_decimal (hi, lo, t->scale, out);
        }
        case S_DATE:
            return dbt_cell_unixtime (DBT_COL_DATE, (int64_t) s_u16 (p) * 86400, 0, &t->days,
                                      out, 64);
        case S_DATE32:
            return dbt_cell_unixtime (DBT_COL_DATE, (int64_t) (int32_t) s_u32 (p) * 86400, 0,
                                      &t->days, out, 64);
        case S_DATETIME:
            return dbt_cell_unixtime (nested ? DBT_COL_TIMESTAMP : DBT_COL_TIMESTAMPTZ,
                                      (int64_t) s_u32 (p), 0, &t->days, out, 64);
        case S_DATETIME64:
            return dbt_ch_text_datetime64 ((int64_t) s_u64 (p), t->scale,
                                      nested ? DBT_COL_TIMESTAMP : DBT_COL_TIMESTAMPTZ,
                                      &t->days, out);
        case S_UUID: {
            uint64_t hi = s_u64 (p), lo = s_u64 (p + 8);
            return snprintf (out, 64, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
                             "-%012" PRIx64, hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                             lo >> 48, lo & (uint64_t) 0xffffffffffff);
        }
        case S_IPV4: {
            uint32_t v = s_u32 (p);
            return snprintf (out, 64, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff,
                             (v >> 8) & 0xff, v & 0xff);
        }
        case S_IPV6:
            if (!inet_ntop (AF_INET6, p, out, 64))
                return -1;
            return (int) strlen (out);
        default:
            return -1;
    }
}

//  Append value i of t in ClickHouse's text form (quoted: as an element of
//  an array or tuple). Returns 0 or -1 (a value with no text).
static int
s_text (const dbt_ch_native_t *self, s_type_t *t, size_t i, bool quoted, dbt_buf_t *out)
{
    switch (t->kind) {
        case S_NULLABLE:
            if (*s_at (self, t->off + i)) {
                dbt_buf_puts (out, "NULL");
                return 0;
            }
            return s_text (self, t->sub [0], i, quoted, out);
        case S_LOWCARD: {
            size_t key = s_lowcard_key (self, t, i);
            if (t->lc_nullable && key == 0) {
                dbt_buf_puts (out, "NULL");
                return 0;
            }
            return s_text (self, t->sub [0], key, quoted, out);
        }
        case S_NOTHING:
            dbt_buf_puts (out, "NULL");
            return 0;
        case S_ARRAY: {
            size_t start = i ? (size_t) s_u64 (s_at (self, t->off + 8 * (i - 1))) : 0;
            size_t end = (size_t) s_u64 (s_at (self, t->off + 8 * i));
            dbt_buf_putc (out, '[');
            for (size_t k = start; k < end; k++) {
                if (k > start)
                    dbt_buf_putc (out, ',');
                if (s_text (self, t->sub [0], k, true, out))
                    return -1;
            }
            dbt_buf_putc (out, ']');
            return 0;
        }
        case S_TUPLE:
            dbt_buf_putc (out, '(');
            for (size_t k = 0; k < t->nsub; k++) {
                if (k)
                    dbt_buf_putc (out, ',');
                if (s_text (self, t->sub [k], i, true, out))
                    return -1;
            }
            dbt_buf_putc (out, ')');
            return 0;
        case S_STRING:
        case S_FIXEDSTRING: {
            const char *val = t->kind == S_STRING ? self->in.data + t->starts [i]
                            : self->in.data + t->off + i * t->width;
            size_t len = t->kind == S_STRING ? t->lens [i] : t->width;
            if (quoted)
                dbt_ch_text_quoted (out, val, len);
            else
                dbt_buf_append (out, val, len);
            return 0;
        }
        case S_ENUM: {
            int64_t v = s_int_at (s_at (self, t->off + i * t->width), t->width);
            const char *name = s_enum_name (t, v);
            if (!name)
                dbt_buf_printf (out, "%" PRId64, v);
            else
            if (quoted)
                dbt_ch_text_quoted (out, name, strlen (name));
            else
                dbt_buf_puts (out, name);
            return 0;
        }
        default: {
            char text [64];
            int len = s_scalar_text (self, t, i, true, text);
            if (len < 0)
                return -1;
            bool q = quoted && t->kind != S_INT && t->kind != S_UINT && t->kind != S_BOOL
                  && t->kind != S_FLOAT32 && t->kind != S_FLOAT64 && t->kind != S_DECIMAL;
            if (q)
                dbt_buf_putc (out, '\'');
            dbt_buf_append (out, text, (size_t) len);
            if (q)
                dbt_buf_putc (out, '\'');
            return 0;
        }
    }
}

//  Set vals [c] and lens [c] to the canonical text of row r of column c.
//  Returns 0 or an error code with err set.
static int
s_cell (dbt_ch_native_t *self, size_t c, size_t r, char *err)
{
    s_type_t *t = self->types [c];
    size_t i = r;
    for (;;) {
        if (t->kind == S_NULLABLE) {
            if (*s_at (self, t->off + i)) {
                self->vals [c] = NULL;
                self->lens [c] = 0;
                return 0;
            }
            t = t->sub [0];
        }
        else
        if (t->kind == S_LOWCARD) {
            size_t key = s_lowcard_key (self, t, i);
            if (t->lc_nullable && key == 0) {
                self->vals [c] = NULL;
                self->lens [c] = 0;
                return 0;
            }
            t = t->sub [0];
            i = key;
        }
        else
            break;
    }
    dbt_buf_t *cell = &self->cells [c];
    switch (t->kind) {
        case S_STRING:
            self->vals [c] = self->in.data + t->starts [i];
            self->lens [c] = t->lens [i];
            return 0;
        case S_FIXEDSTRING:
            self->vals [c] = self->in.data + t->off + i * t->width;
            self->lens [c] = t->width;
            return 0;
        case S_NOTHING:
            self->vals [c] = NULL;
            self->lens [c] = 0;
            return 0;
        case S_ENUM:
        case S_ARRAY:
        case S_TUPLE:
            dbt_buf_reset (cell);
            if (s_text (self, t, i, false, cell))
                return s_garbled ("a value with no text", err);
            break;
        default: {
            dbt_buf_reserve (cell, 64);
            int len = s_scalar_text (self, t, i, false, cell->data);
            if (len < 0)
                return s_garbled ("a value out of range", err);
            cell->len = (size_t) len;
            break;
        }
    }
    self->vals [c] = cell->data;
    self->lens [c] = cell->len;
    return 0;
}

//  --------------------------------------------------------------------------
//  Blocks

dbt_ch_native_t *
dbt_ch_native_new (size_t max_block)
{
    dbt_ch_native_t *self = (dbt_ch_native_t *) dbt_malloc (sizeof (dbt_ch_native_t));
    self->max_block = max_block;
    return self;
}

//  Free the columns and output arrays.
static void
s_columns_free (dbt_ch_native_t *self)
{
    for (size_t i = 0; i < self->ncols; i++) {
        s_type_destroy (&self->types [i]);
        if (self->cells)
            dbt_buf_free (&self->cells [i]);
    }
    dbt_columns_free (&self->cols, self->ncols);
    free (self->types);
    free (self->cells);
    free (self->vals);
    free (self->lens);
    self->types = NULL;
    self->cells = NULL;
    self->vals = NULL;
    self->lens = NULL;
    self->ncols = 0;
    self->have_header = false;
}

void
dbt_ch_native_reset (dbt_ch_native_t *self)
{
    s_columns_free (self);
    dbt_buf_reset (&self->in);
    //  A very large block grew the buffer: give the memory back.
    if (self->in.cap > 8 * 1024 * 1024)
        dbt_buf_free (&self->in);
    self->stage = 0;
    self->ready = false;
    self->exception = false;
    self->pos = 0;
    self->row = 0;
}

void
dbt_ch_native_destroy (dbt_ch_native_t **self_p)
{
    assert (self_p);
    dbt_ch_native_t *self = *self_p;
    if (!self)
        return;
    s_columns_free (self);
    dbt_buf_free (&self->in);
    free (self);
    *self_p = NULL;
}

void
dbt_ch_native_feed (dbt_ch_native_t *self, const void *data, size_t len)
{
    dbt_buf_append (&self->in, data, len);
}

const char *
dbt_ch_native_rest (dbt_ch_native_t *self, size_t *len)
{
    if (!self->exception) {
        *len = 0;
        return "";
    }
    *len = self->in.len - self->exc_off;
    return self->in.data + self->exc_off;
}

//  True when the bytes at off start an exception text: "Code: " digit.
static bool
s_is_exception (const dbt_ch_native_t *self, size_t off)
{
    return s_avail (self, off) >= 7 && memcmp (s_at (self, off), "Code: ", 6) == 0
        && isdigit (*s_at (self, off + 6));
}

//  The block at the buffer's start is not a valid block: an exception
//  text (wait for all of it) or an error.
static int
s_not_block (dbt_ch_native_t *self, bool eof, const char *why, char *err)
{
    if (s_is_exception (self, 0)) {
        self->exception = true;
        self->exc_off = 0;
        return eof ? DBT_CH_EXCEPTION : DBT_CH_NEED;
    }
    if (!eof && self->in.len < 7)
        return DBT_CH_NEED;     //  too little to tell
    dbt_err_set (err, "clickhouse: garbled result stream (%s)", why);
    return DBT_ERROR;
}

//  The block needs bytes that have not arrived.
static int
s_incomplete (dbt_ch_native_t *self, bool eof, char *err)
{
    if (!eof) {
        if (self->in.len > self->max_block) {
            dbt_err_set (err, "clickhouse: a result block is larger than %zu MB "
                         "(lower max_block_size)", self->max_block >> 20);
            return DBT_ETOOBIG;
        }
        return DBT_CH_NEED;
    }
    if (s_is_exception (self, 0))
        return s_not_block (self, eof, "", err);
    //  Text appended inside a block (an error while it was being written):
    //  the last "Code: " in the tail
    size_t from = self->in.len > 65536 ? self->in.len - 65536 : 0;
    const char *hit = NULL;
    for (const char *at = self->in.data + from;
         (at = (const char *) memmem (at, (size_t) (self->in.data + self->in.len - at),
                                      "Code: ", 6)) != NULL; at++)
        if (s_is_exception (self, (size_t) (at - self->in.data)))
            hit = at;
    if (hit) {
        self->exception = true;
        self->exc_off = (size_t) (hit - self->in.data);
        return DBT_CH_EXCEPTION;
    }
    dbt_err_set (err, "clickhouse: the result stream ended inside a block "
                 "(%zu bytes of it received)", self->in.len);
    return DBT_ERROR;
}

//  Start the output arrays once the first block's columns are known.
static void
s_header_done (dbt_ch_native_t *self)
{
    size_t n = self->ncols ? self->ncols : 1;
    self->vals = (const char **) dbt_malloc (n * sizeof (char *));
    self->lens = (size_t *) dbt_malloc (n * sizeof (size_t));
    self->cells = (dbt_buf_t *) dbt_malloc (n * sizeof (dbt_buf_t));
    self->have_header = true;
}

//  Read the block at the buffer's start (resuming). Returns 1 when it is
//  read, 0 at the clean end, DBT_CH_NEED, DBT_CH_EXCEPTION or an error.
static int
s_block (dbt_ch_native_t *self, bool eof, char *err)
{
    if (self->exception)
        return eof ? DBT_CH_EXCEPTION : DBT_CH_NEED;
    if (self->stage == 0) {
        if (self->in.len == 0)
            return eof ? 0 : DBT_CH_NEED;
        size_t p = 0;
        uint64_t ncols, nrows;
        int rc = s_varint (self, &p, &ncols);
        if (rc > 0)
            rc = s_varint (self, &p, &nrows);
        if (rc < 0)
            return s_not_block (self, eof, "block counts", err);
        if (rc == 0)
            return s_incomplete (self, eof, err);
        if (ncols == 0 || ncols > S_MAX_COLS || nrows > self->max_block
        || (self->have_header && ncols != self->ncols))
            return s_not_block (self, eof, "column count", err);
        if (!self->have_header) {
            self->cols = (dbt_column_t *) dbt_malloc (ncols * sizeof (dbt_column_t));
            self->types = (s_type_t **) dbt_malloc (ncols * sizeof (s_type_t *));
        }
        self->bcols = (size_t) ncols;
        self->brows = (size_t) nrows;
        self->col = 0;
        self->pos = p;
        self->stage = 1;
    }
    while (self->col < self->bcols) {
        size_t c = self->col;
        if (self->stage == 1) {
            //  Column name and type: the first block's, or the same again
            size_t p = self->pos, name, nlen, type, tlen;
            int rc = s_string (self, &p, 65536, &name, &nlen);
            if (rc > 0)
                rc = s_string (self, &p, 65536, &type, &tlen);
            if (rc < 0)
                return s_not_block (self, eof, "column header", err);
            if (rc == 0)
                return s_incomplete (self, eof, err);
            if (self->have_header) {
                const dbt_column_t *col = &self->cols [c];
                if (strlen (col->name) != nlen || memcmp (col->name, s_at (self, name), nlen)
                ||  strlen (col->source_type) != tlen
                ||  memcmp (col->source_type, s_at (self, type), tlen))
                    return s_not_block (self, eof, "a block with other columns", err);
            }
            else {
                char *tname = dbt_strndup (self->in.data + type, tlen);
                char inner [DBT_ERRMSG_LEN];
                s_type_t *tree = strlen (tname) == tlen ? s_type_of (tname, inner) : NULL;
                if (!tree) {
                    if (s_is_exception (self, 0) || (!eof && self->in.len < 7)) {
                        free (tname);
                        return s_not_block (self, eof, "", err);
                    }
                    dbt_err_set (err, "clickhouse: column '%.*s' has type '%s', which cannot "
                                 "be read (%s); convert it in the query, e.g. toString()",
                                 (int) nlen, self->in.data + name, tname,
                                 strlen (tname) == tlen ? inner : "NUL in the name");
                    free (tname);
                    return DBT_ERROR;
                }
                dbt_column_t *col = &self->cols [c];
                col->name = dbt_strndup (self->in.data + name, nlen);
                col->source_type = tname;
                s_canonical (tree, col);
                self->types [c] = tree;
                self->ncols = c + 1;
            }
            s_type_reset (self->types [c]);
            self->pos = p;
            self->stage = self->brows ? 2 : 1;
            if (!self->brows) {
                self->col++;
                continue;
            }
        }
        //  The LowCardinality versions of the column, then its values
        s_type_t *t = self->types [c];
        size_t nlc = s_lowcard_count (t);
        if (t->stage == 0 && nlc) {
            int rc = s_need (self, self->pos, nlc, 8, err);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return s_incomplete (self, eof, err);
            for (size_t k = 0; k < nlc; k++)
                if (s_u64 (s_at (self, self->pos + 8 * k)) != 1)
                    return s_garbled ("LowCardinality version", err);
        }
        size_t p = self->pos + 8 * nlc;
        int rc = s_data (self, t, self->brows, &p, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return s_incomplete (self, eof, err);
        self->pos = p;
        self->col++;
        self->stage = 1;
    }
    //  Fed in one piece, a block over the limit never waited for bytes
    if (self->pos > self->max_block) {
        dbt_err_set (err, "clickhouse: a result block is larger than %zu MB "
                     "(lower max_block_size)", self->max_block >> 20);
        return DBT_ETOOBIG;
    }
    if (!self->have_header)
        s_header_done (self);
    self->ready = true;
    self->row = 0;
    return 1;
}

//  Drop the block that has been handed out; the bytes after it move to
//  the buffer's start.
static void
s_block_drop (dbt_ch_native_t *self)
{
    size_t rest = self->in.len - self->pos;
    memmove (self->in.data, self->in.data + self->pos, rest);
    self->in.len = rest;
    if (self->in.data)
        self->in.data [rest] = 0;
    self->pos = 0;
    self->stage = 0;
    self->ready = false;
}

int
dbt_ch_native_header (dbt_ch_native_t *self, bool eof, char *err)
{
    if (self->have_header)
        return 1;
    return s_block (self, eof, err);
}

int
dbt_ch_native_columns (dbt_ch_native_t *self, const dbt_column_t **cols, size_t *ncols)
{
    *cols = self->have_header ? self->cols : NULL;
    *ncols = self->have_header ? self->ncols : 0;
    return self->have_header ? 0 : DBT_EINVAL;
}

int
dbt_ch_native_next (dbt_ch_native_t *self, dbt_row_t *row, bool eof, char *err)
{
    for (;;) {
        if (self->ready && self->row < self->brows) {
            size_t r = self->row++;
            for (size_t c = 0; c < self->ncols; c++) {
                int rc = s_cell (self, c, r, err);
                if (rc)
                    return rc;
            }
            row->ncols = self->ncols;
            row->vals = self->vals;
            row->lens = self->lens;
            return 1;
        }
        if (self->ready)
            s_block_drop (self);
        int rc = s_block (self, eof, err);
        if (rc != 1)
            return rc;
    }
}
