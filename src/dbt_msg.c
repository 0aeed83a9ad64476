/*  =========================================================================
    dbt_msg - msgpack encoding and the mesh's wire frames

    See dbt_msg.h. The reader validates the whole document with a bounded,
    allocation-free walk before msgpack-c unpacks it, so a frame that claims
    a billion array items in ten bytes is refused instead of allocated.
    =========================================================================
*/
#include "dbt_classes.h"

#define MPW_MAX_DEPTH 32
#define MPR_MAX_DEPTH 32

struct _dbt_mpw_t {
    msgpack_sbuffer sbuf;               //  bytes written
    msgpack_packer pk;                  //  packer over sbuf
    size_t open_at [MPW_MAX_DEPTH];     //  offset of each open header
    uint32_t counts [MPW_MAX_DEPTH];    //  items written in each
    bool is_map [MPW_MAX_DEPTH];        //  container kind
    int depth;                          //  open containers
};

struct _dbt_mpr_t {
    msgpack_unpacked unpacked;          //  owns the zone of objects
    char *bytes;                        //  copy of the input: msgpack-c's
                                        //  strings point into it
    size_t len;                         //  its length
};

//  --------------------------------------------------------------------------
//  Writer

dbt_mpw_t *
dbt_mpw_new (void)
{
    dbt_mpw_t *self = (dbt_mpw_t *) dbt_malloc (sizeof (dbt_mpw_t));
    msgpack_sbuffer_init (&self->sbuf);
    msgpack_packer_init (&self->pk, &self->sbuf, msgpack_sbuffer_write);
    return self;
}

void
dbt_mpw_destroy (dbt_mpw_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        msgpack_sbuffer_destroy (&(*self_p)->sbuf);
        free (*self_p);
        *self_p = NULL;
    }
}

void
dbt_mpw_reset (dbt_mpw_t *self)
{
    self->sbuf.size = 0;
    self->depth = 0;
}

//  Count one item in the innermost open container.
static void
s_item (dbt_mpw_t *self)
{
    if (self->depth > 0)
        self->counts [self->depth - 1]++;
}

static void
s_open (dbt_mpw_t *self, bool is_map)
{
    assert (self->depth < MPW_MAX_DEPTH);
    s_item (self);
    self->open_at [self->depth] = self->sbuf.size;
    self->counts [self->depth] = 0;
    self->is_map [self->depth] = is_map;
    self->depth++;
    //  32-bit header, patched in dbt_mpw_end
    char header [5] = { (char) (is_map ? 0xdf : 0xdd), 0, 0, 0, 0 };
    msgpack_sbuffer_write (&self->sbuf, header, 5);
}

void
dbt_mpw_map (dbt_mpw_t *self)
{
    s_open (self, true);
}

void
dbt_mpw_array (dbt_mpw_t *self)
{
    s_open (self, false);
}

void
dbt_mpw_end (dbt_mpw_t *self)
{
    assert (self->depth > 0);
    self->depth--;
    uint32_t count = self->counts [self->depth];
    if (self->is_map [self->depth]) {
        assert (count % 2 == 0);
        count /= 2;
    }
    unsigned char *header = (unsigned char *) self->sbuf.data + self->open_at [self->depth];
    header [1] = (unsigned char) (count >> 24);
    header [2] = (unsigned char) (count >> 16);
    header [3] = (unsigned char) (count >> 8);
    header [4] = (unsigned char) count;
}

void
dbt_mpw_str (dbt_mpw_t *self, const char *str)
{
    if (str)
        dbt_mpw_strn (self, str, strlen (str));
    else
        dbt_mpw_nil (self);
}

void
dbt_mpw_strn (dbt_mpw_t *self, const char *str, size_t len)
{
    s_item (self);
    msgpack_pack_str_with_body (&self->pk, str, len);
}

void
dbt_mpw_u64 (dbt_mpw_t *self, uint64_t value)
{
    s_item (self);
    msgpack_pack_uint64 (&self->pk, value);
}

void
dbt_mpw_i64 (dbt_mpw_t *self, int64_t value)
{
    s_item (self);
    msgpack_pack_int64 (&self->pk, value);
}

void
dbt_mpw_f64 (dbt_mpw_t *self, double value)
{
    s_item (self);
    msgpack_pack_double (&self->pk, value);
}

void
dbt_mpw_bool (dbt_mpw_t *self, bool value)
{
    s_item (self);
    if (value)
        msgpack_pack_true (&self->pk);
    else
        msgpack_pack_false (&self->pk);
}

void
dbt_mpw_nil (dbt_mpw_t *self)
{
    s_item (self);
    msgpack_pack_nil (&self->pk);
}

void
dbt_mpw_raw (dbt_mpw_t *self, const char *data, size_t len)
{
    s_item (self);
    msgpack_sbuffer_write (&self->sbuf, data, len);
}

void
dbt_mpw_kstr (dbt_mpw_t *self, const char *key, const char *value)
{
    dbt_mpw_str (self, key);
    dbt_mpw_str (self, value);
}

void
dbt_mpw_ku64 (dbt_mpw_t *self, const char *key, uint64_t value)
{
    dbt_mpw_str (self, key);
    dbt_mpw_u64 (self, value);
}

void
dbt_mpw_ki64 (dbt_mpw_t *self, const char *key, int64_t value)
{
    dbt_mpw_str (self, key);
    dbt_mpw_i64 (self, value);
}

void
dbt_mpw_kbool (dbt_mpw_t *self, const char *key, bool value)
{
    dbt_mpw_str (self, key);
    dbt_mpw_bool (self, value);
}

const char *
dbt_mpw_data (dbt_mpw_t *self, size_t *len)
{
    assert (self->depth == 0);
    *len = self->sbuf.size;
    return self->sbuf.data;
}

//  --------------------------------------------------------------------------
//  Reader: structural validation before unpacking.

static uint64_t
s_be (const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

//  Walk one document; returns 0 when every claimed item and byte is
//  present, nesting stays within MPR_MAX_DEPTH and nothing trails.
static int
s_validate (const unsigned char *data, size_t len, char *err)
{
    uint64_t stack [MPR_MAX_DEPTH + 1];
    int depth = 1;
    stack [0] = 1;
    size_t pos = 0;
    //  Items msgpack-c will allocate 24 bytes for: at most one per two
    //  bytes, so a frame of a million nils cannot cost 24 times its size.
    uint64_t budget = len / 2 + 64, items_seen = 0;
    while (depth > 0) {
        if (stack [depth - 1] == 0) {
            depth--;
            continue;
        }
        stack [depth - 1]--;
        if (++items_seen > budget) {
            dbt_err_set (err, "msgpack: more than %" PRIu64 " items in %zu bytes", budget, len);
            return -1;
        }
        if (pos >= len) {
            dbt_err_set (err, "msgpack: truncated at byte %zu", pos);
            return -1;
        }
        unsigned char b = data [pos++];
        uint64_t skip = 0;          //  payload bytes after the header
        uint64_t items = 0;         //  container items
        bool container = false;
        int n = 0;                  //  length-field bytes
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            skip = 0;
        else
        if (b >= 0x80 && b <= 0x8f) {
            container = true;
            items = 2 * (uint64_t) (b & 0x0f);
        }
        else
        if (b >= 0x90 && b <= 0x9f) {
            container = true;
            items = b & 0x0f;
        }
        else
        if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else {
            switch (b) {
                case 0xc4: case 0xd9: n = 1; break;                 //  bin8, str8
                case 0xc5: case 0xda: n = 2; break;                 //  bin16, str16
                case 0xc6: case 0xdb: n = 4; break;                 //  bin32, str32
                case 0xc7: n = 1; skip = 1; break;                  //  ext8 (+type)
                case 0xc8: n = 2; skip = 1; break;
                case 0xc9: n = 4; skip = 1; break;
                case 0xca: skip = 4; break;
                case 0xcb: skip = 8; break;
                case 0xcc: case 0xd0: skip = 1; break;
                case 0xcd: case 0xd1: skip = 2; break;
                case 0xce: case 0xd2: skip = 4; break;
                case 0xcf: case 0xd3: skip = 8; break;
                case 0xd4: skip = 2; break;
                case 0xd5: skip = 3; break;
                case 0xd6: skip = 5; break;
                case 0xd7: skip = 9; break;
                case 0xd8: skip = 17; break;
                case 0xdc: n = 2; container = true; break;
                case 0xdd: n = 4; container = true; break;
                case 0xde: n = 2; container = true; break;
                case 0xdf: n = 4; container = true; break;
                default:
                    dbt_err_set (err, "msgpack: invalid type byte 0x%02x at byte %zu", b, pos - 1);
                    return -1;
            }
            if (n) {
                if (len - pos < (size_t) n) {
                    dbt_err_set (err, "msgpack: truncated length at byte %zu", pos);
                    return -1;
                }
                uint64_t value = s_be (data + pos, n);
                pos += (size_t) n;
                if (container)
                    items = (b == 0xde || b == 0xdf) ? 2 * value : value;
                else
                    skip += value;
            }
        }
        if (container) {
            //  Every item needs at least one byte: refuse impossible counts
            //  before msgpack-c allocates room for them.
            if (items > len - pos) {
                dbt_err_set (err, "msgpack: container claims %" PRIu64 " items, %zu bytes left",
                             items, len - pos);
                return -1;
            }
            if (items) {
                if (depth >= MPR_MAX_DEPTH) {
                    dbt_err_set (err, "msgpack: nesting deeper than %d", MPR_MAX_DEPTH);
                    return -1;
                }
                stack [depth++] = items;
            }
        }
        else {
            if (skip > len - pos) {
                dbt_err_set (err, "msgpack: truncated value at byte %zu", pos);
                return -1;
            }
            pos += (size_t) skip;
        }
    }
    if (pos != len) {
        dbt_err_set (err, "msgpack: %zu unexpected bytes after the document", len - pos);
        return -1;
    }
    return 0;
}

dbt_mpr_t *
dbt_mpr_new (const void *data, size_t len, char *err)
{
    if (s_validate ((const unsigned char *) data, len, err))
        return NULL;
    dbt_mpr_t *self = (dbt_mpr_t *) dbt_malloc (sizeof (dbt_mpr_t));
    msgpack_unpacked_init (&self->unpacked);
    //  Unpacked strings refer to the bytes they were parsed from, so the
    //  reader keeps its own copy: callers may free theirs (a received
    //  frame) at once.
    self->bytes = (char *) dbt_malloc (len ? len : 1);
    memcpy (self->bytes, data, len);
    self->len = len;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&self->unpacked, self->bytes, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len) {
        dbt_err_set (err, "msgpack: cannot unpack document (%d)", (int) rc);
        dbt_mpr_destroy (&self);
        return NULL;
    }
    return self;
}

void
dbt_mpr_destroy (dbt_mpr_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        msgpack_unpacked_destroy (&(*self_p)->unpacked);
        free ((*self_p)->bytes);
        free (*self_p);
        *self_p = NULL;
    }
}

size_t
dbt_mpr_size (dbt_mpr_t *self)
{
    return self->len;
}

const msgpack_object *
dbt_mpr_root (dbt_mpr_t *self)
{
    return &self->unpacked.data;
}

const msgpack_object *
dbt_mp_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen
        && memcmp (k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

int
dbt_mp_str (const msgpack_object *obj, const char **str, size_t *len)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR)
        return -1;
    *str = obj->via.str.ptr;
    *len = obj->via.str.size;
    return 0;
}

int
dbt_mp_u64 (const msgpack_object *obj, uint64_t *value)
{
    if (!obj || obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *value = obj->via.u64;
    return 0;
}

int
dbt_mp_i64 (const msgpack_object *obj, int64_t *value)
{
    if (!obj)
        return -1;
    if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = obj->via.i64;
        return 0;
    }
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER && obj->via.u64 <= INT64_MAX) {
        *value = (int64_t) obj->via.u64;
        return 0;
    }
    return -1;
}

int
dbt_mp_bool (const msgpack_object *obj, bool *value)
{
    if (!obj || obj->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *value = obj->via.boolean;
    return 0;
}

bool
dbt_utf8_valid (const char *str, size_t len)
{
    const unsigned char *p = (const unsigned char *) str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p [i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        }
        else
        if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        }
        else
        if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        }
        else
            return false;
        if (len - i <= (size_t) n)
            return false;
        for (int k = 1; k <= n; k++) {
            if ((p [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p [i + k] & 0x3f);
        }
        //  overlong forms, surrogates, past U+10FFFF
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        ||  (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += (size_t) n + 1;
    }
    return true;
}

//  Look a field up; 1 when present and not nil, 0 when absent (error if
//  required), -1 on error.
static int
s_field (const msgpack_object *map, const char *key, bool required,
         const msgpack_object **obj, char *err)
{
    *obj = dbt_mp_get (map, key);
    if (!*obj || (*obj)->type == MSGPACK_OBJECT_NIL) {
        if (required) {
            dbt_err_set (err, "missing field '%s'", key);
            return -1;
        }
        return 0;
    }
    return 1;
}

int
dbt_mp_field_str (const msgpack_object *map, const char *key, bool required,
                  char **value, char *err)
{
    const msgpack_object *obj;
    int rc = s_field (map, key, required, &obj, err);
    if (rc <= 0)
        return rc;
    const char *str;
    size_t len;
    if (dbt_mp_str (obj, &str, &len) || !dbt_utf8_valid (str, len)) {
        dbt_err_set (err, "field '%s' must be a UTF-8 string", key);
        return -1;
    }
    free (*value);
    *value = dbt_strndup (str, len);
    return 0;
}

int
dbt_mp_field_u64 (const msgpack_object *map, const char *key, bool required,
                  uint64_t *value, char *err)
{
    const msgpack_object *obj;
    int rc = s_field (map, key, required, &obj, err);
    if (rc <= 0)
        return rc;
    if (dbt_mp_u64 (obj, value)) {
        dbt_err_set (err, "field '%s' must be a non-negative integer", key);
        return -1;
    }
    return 0;
}

int
dbt_mp_field_i64 (const msgpack_object *map, const char *key, bool required,
                  int64_t *value, char *err)
{
    const msgpack_object *obj;
    int rc = s_field (map, key, required, &obj, err);
    if (rc <= 0)
        return rc;
    if (dbt_mp_i64 (obj, value)) {
        dbt_err_set (err, "field '%s' must be an integer", key);
        return -1;
    }
    return 0;
}

int
dbt_mp_field_bool (const msgpack_object *map, const char *key, bool required,
                   bool *value, char *err)
{
    const msgpack_object *obj;
    int rc = s_field (map, key, required, &obj, err);
    if (rc <= 0)
        return rc;
    if (dbt_mp_bool (obj, value)) {
        dbt_err_set (err, "field '%s' must be a boolean", key);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Mesh messages

zmsg_t *
dbt_msg_encode (zframe_t *identity, const char *signature, int command, dbt_mpw_t *body)
{
    zmsg_t *msg = zmsg_new ();
    if (identity)
        zmsg_append (msg, &(zframe_t *) { zframe_dup (identity) });
    zmsg_addstr (msg, signature);
    unsigned char cmd = (unsigned char) command;
    zmsg_addmem (msg, &cmd, 1);
    size_t len = 0;
    const char *data = dbt_mpw_data (body, &len);
    zmsg_addmem (msg, data, len);
    dbt_mpw_reset (body);
    return msg;
}

int
dbt_msg_send (zsock_t *sock, zframe_t *identity, const char *signature,
              int command, dbt_mpw_t *body)
{
    zmsg_t *msg = dbt_msg_encode (identity, signature, command, body);
    int rc = zmsg_send (&msg, sock);
    if (rc) {
        int saved = errno;
        zmsg_destroy (&msg);
        errno = saved;
    }
    return rc;
}

void
dbt_msg_limit (zsock_t *sock)
{
    zsock_set_maxmsgsize (sock, DBT_MSG_MAX_FRAME);
}

//  --------------------------------------------------------------------------
//  Worker identities

#define S_WORKER_SECRET 32          //  hex digits of a routing id's random part

static bool
s_name_char (char c)
{
    return isalnum ((unsigned char) c) || c == '_' || c == '.' || c == ':' || c == '-';
}

char *
dbt_msg_worker_identity (const char *name)
{
    char clean [65];
    size_t n = 0;
    for (; name && name [n] && n < 64; n++)
        clean [n] = s_name_char (name [n]) ? name [n] : '_';
    if (n == 0)
        clean [n++] = '_';
    clean [n] = 0;
    uint64_t a = dbt_random64 (), b = dbt_random64 ();
    return dbt_printf ("%s/%016" PRIx64 "%016" PRIx64, clean, a, b);
}

bool
dbt_msg_worker_identity_ok (const char *id, size_t len)
{
    if (len < S_WORKER_SECRET + 2 || len > 64 + 1 + S_WORKER_SECRET)
        return false;
    size_t name = len - S_WORKER_SECRET - 1;
    if (id [name] != '/')
        return false;
    for (size_t i = 0; i < name; i++)
        if (!s_name_char (id [i]))
            return false;
    for (size_t i = name + 1; i < len; i++)
        if (!isxdigit ((unsigned char) id [i]) || isupper ((unsigned char) id [i]))
            return false;
    return true;
}

void
dbt_msg_worker_display (const char *id, size_t len, char out [DBT_WORKER_DISPLAY_MAX])
{
    size_t name = len > S_WORKER_SECRET ? len - S_WORKER_SECRET - 1 : 0;
    if (name > 64)
        name = 64;
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) id, len);
    const char *hex = zdigest_string (digest);
    snprintf (out, DBT_WORKER_DISPLAY_MAX, "%.*s/%.12s", (int) name, id, hex);
    for (char *p = out + name + 1; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    zdigest_destroy (&digest);
}

int
dbt_msg_extend (zmsg_t *msg, dbt_mpw_t *extra, uint32_t npairs)
{
    zframe_t *body = zmsg_last (msg);
    size_t len = body ? zframe_size (body) : 0;
    const unsigned char *old = body ? zframe_data (body) : NULL;
    if (len < 5 || old [0] != 0xdf) {
        dbt_mpw_reset (extra);
        return -1;
    }
    uint32_t count = (uint32_t) s_be (old + 1, 4) + npairs;
    size_t add;
    const char *bytes = dbt_mpw_data (extra, &add);
    zframe_t *grown = zframe_new (NULL, len + add);
    unsigned char *out = zframe_data (grown);
    memcpy (out, old, len);
    out [1] = (unsigned char) (count >> 24);
    out [2] = (unsigned char) (count >> 16);
    out [3] = (unsigned char) (count >> 8);
    out [4] = (unsigned char) count;
    memcpy (out + len, bytes, add);
    zmsg_remove (msg, body);
    zframe_destroy (&body);
    zmsg_append (msg, &grown);
    dbt_mpw_reset (extra);
    return 0;
}

dbt_msg_t *
dbt_msg_recv (zsock_t *sock, bool router, char *err)
{
    if (err)
        err [0] = 0;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return NULL;
    return dbt_msg_parse (&msg, router, err);
}

dbt_msg_t *
dbt_msg_parse (zmsg_t **msg_p, bool router, char *err)
{
    assert (msg_p && *msg_p);
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    if (err)
        err [0] = 0;
    dbt_msg_t *self = (dbt_msg_t *) dbt_malloc (sizeof (dbt_msg_t));
    size_t expected = router ? 4 : 3;
    if (zmsg_size (msg) != expected) {
        dbt_err_set (err, "message has %zu frames, expected %zu", zmsg_size (msg), expected);
        goto fail;
    }
    if (router)
        self->identity = zmsg_pop (msg);
    zframe_t *sig = zmsg_first (msg);
    //  Frames from TCP and IPC peers carry their address; inproc ones do
    //  not. (On ROUTER sockets the routing id frame lacks metadata when
    //  the peer chose its id, so the signature frame is asked.)
    self->local = zframe_meta (sig, "Peer-Address") == NULL;
    if (zframe_size (sig) != strlen (DBT_PROTO_CLIENT)
    || (memcmp (zframe_data (sig), DBT_PROTO_CLIENT, zframe_size (sig)) != 0
    &&  memcmp (zframe_data (sig), DBT_PROTO_WORKER, zframe_size (sig)) != 0
    &&  memcmp (zframe_data (sig), DBT_PROTO_STATE, zframe_size (sig)) != 0)) {
        dbt_err_set (err, "unknown protocol signature");
        goto fail;
    }
    memcpy (self->signature, zframe_data (sig), zframe_size (sig));
    zframe_t *cmd = zmsg_next (msg);
    if (zframe_size (cmd) != 1) {
        dbt_err_set (err, "command frame must be one byte");
        goto fail;
    }
    self->command = zframe_data (cmd) [0];
    zframe_t *body = zmsg_next (msg);
    if (zframe_size (body) > DBT_MSG_MAX_BODY) {
        dbt_err_set (err, "body of %zu bytes is over the limit", zframe_size (body));
        goto fail;
    }
    char perr [DBT_ERRMSG_LEN];
    self->body = dbt_mpr_new (zframe_data (body), zframe_size (body), perr);
    if (!self->body) {
        dbt_err_set (err, "bad body: %s", perr);
        goto fail;
    }
    self->map = dbt_mpr_root (self->body);
    if (self->map->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "body must be a msgpack map");
        goto fail;
    }
    zmsg_destroy (&msg);
    return self;
fail:
    zmsg_destroy (&msg);
    dbt_msg_destroy (&self);
    if (err && !err [0])
        dbt_err_set (err, "malformed message");
    return NULL;
}

void
dbt_msg_destroy (dbt_msg_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zframe_destroy (&(*self_p)->identity);
        dbt_mpr_destroy (&(*self_p)->body);
        free (*self_p);
        *self_p = NULL;
    }
}
