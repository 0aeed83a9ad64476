/*  =========================================================================
    dbt_msg_test - self test of dbt_msg (public functions only)

    Run by tests/dbt_selftest (-t msg); kept out of the libraries.
    =========================================================================
*/
#include "dbt_classes.h"

//  --------------------------------------------------------------------------
//  Self test

void
dbt_msg_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "job-1");
    dbt_mpw_ku64 (w, "rows", 12345678901ULL);
    dbt_mpw_ki64 (w, "neg", -42);
    dbt_mpw_kbool (w, "ok", true);
    dbt_mpw_kstr (w, "none", NULL);
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "a");
    dbt_mpw_nil (w);
    dbt_mpw_map (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *r = dbt_mpr_new (data, len, err);
    assert (r);
    const msgpack_object *root = dbt_mpr_root (r);
    assert (root->type == MSGPACK_OBJECT_MAP && root->via.map.size == 6);
    char *id = NULL;
    assert (dbt_mp_field_str (root, "id", true, &id, err) == 0 && streq (id, "job-1"));
    free (id);
    uint64_t rows = 0;
    assert (dbt_mp_field_u64 (root, "rows", true, &rows, err) == 0 && rows == 12345678901ULL);
    int64_t neg = 0;
    assert (dbt_mp_field_i64 (root, "neg", true, &neg, err) == 0 && neg == -42);
    bool ok = false;
    assert (dbt_mp_field_bool (root, "ok", true, &ok, err) == 0 && ok);
    char *none = NULL;
    assert (dbt_mp_field_str (root, "none", false, &none, err) == 0 && none == NULL);
    assert (dbt_mp_field_str (root, "none", true, &none, err) == -1);
    assert (dbt_mp_field_str (root, "missing", true, &none, err) == -1);
    assert (strstr (err, "missing"));
    assert (dbt_mp_field_u64 (root, "id", true, &rows, err) == -1);
    assert (dbt_mp_field_u64 (root, "neg", true, &rows, err) == -1);
    const msgpack_object *args = dbt_mp_get (root, "args");
    assert (args && args->type == MSGPACK_OBJECT_ARRAY && args->via.array.size == 3);

    //  The reader owns its bytes: the source may be overwritten at once.
    char *scratch = (char *) dbt_malloc (len);
    memcpy (scratch, data, len);
    dbt_mpr_t *own = dbt_mpr_new (scratch, len, err);
    memset (scratch, 0, len);
    free (scratch);
    char *again = NULL;
    assert (dbt_mp_field_str (dbt_mpr_root (own), "id", true, &again, err) == 0 && streq (again, "job-1"));
    free (again);
    dbt_mpr_destroy (&own);

    //  Every truncation of a valid document is refused, never crashes.
    for (size_t cut = 0; cut < len; cut++) {
        dbt_mpr_t *bad = dbt_mpr_new (data, cut, err);
        assert (bad == NULL);
    }
    //  Trailing bytes are refused.
    char *longer = (char *) dbt_malloc (len + 1);
    memcpy (longer, data, len);
    longer [len] = 0x01;
    assert (dbt_mpr_new (longer, len + 1, err) == NULL);
    free (longer);
    dbt_mpr_destroy (&r);

    //  Impossible container sizes and bad bytes.
    const unsigned char huge_array [] = { 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01 };
    assert (dbt_mpr_new (huge_array, sizeof (huge_array), err) == NULL);
    assert (strstr (err, "claims"));
    const unsigned char huge_str [] = { 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a' };
    assert (dbt_mpr_new (huge_str, sizeof (huge_str), err) == NULL);
    const unsigned char never [] = { 0xc1 };
    assert (dbt_mpr_new (never, 1, err) == NULL);
    //  A frame of a million nils would cost msgpack-c 24 MB: refused
    //  for holding more items than half its bytes; a dense small one is fine.
    size_t nils_len = 5 + 1000000;
    unsigned char *nils = (unsigned char *) dbt_malloc (nils_len);
    memset (nils, 0xc0, nils_len);
    nils [0] = 0xdd;
    nils [1] = 0x00; nils [2] = 0x0f; nils [3] = 0x42; nils [4] = 0x40;       //  1000000
    assert (dbt_mpr_new (nils, nils_len, err) == NULL && strstr (err, "items in"));
    nils [1] = 0; nils [2] = 0; nils [3] = 0; nils [4] = 40;                  //  40 nils
    assert ((r = dbt_mpr_new (nils, 45, err)) != NULL);
    dbt_mpr_destroy (&r);
    free (nils);
    unsigned char deep [64];
    for (int i = 0; i < 63; i++)
        deep [i] = 0x91;
    deep [63] = 0x01;
    assert (dbt_mpr_new (deep, 64, err) == NULL);
    assert (strstr (err, "nesting"));
    assert (dbt_mpr_new ("", 0, err) == NULL);

    //  Random bytes never crash the reader.
    unsigned int seed = 7;
    unsigned char noise [64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t) (rand_r (&seed) % 64);
        for (size_t i = 0; i < n; i++)
            noise [i] = (unsigned char) rand_r (&seed);
        dbt_mpr_t *maybe = dbt_mpr_new (noise, n, err);
        dbt_mpr_destroy (&maybe);
    }

    //  UTF-8 checks.
    assert (dbt_utf8_valid ("plain", 5));
    assert (dbt_utf8_valid ("\xe6\x97\xa5\xf0\x9f\x98\x80", 7));
    assert (!dbt_utf8_valid ("a\0b", 3));
    assert (!dbt_utf8_valid ("\xc0\xaf", 2));
    assert (!dbt_utf8_valid ("\xed\xa0\x80", 3));
    assert (!dbt_utf8_valid ("\xe6\x97", 2));

    //  Frames over a socket pair, including malformed ones.
    dbt_mpw_reset (w);
    zsock_t *router = zsock_new_router ("inproc://dbt-msg-test");
    zsock_t *dealer = zsock_new_dealer (">inproc://dbt-msg-test");
    assert (router && dealer);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "hello", "world");
    dbt_mpw_end (w);
    assert (dbt_msg_send (dealer, NULL, DBT_PROTO_WORKER, DBT_W_READY, w) == 0);
    dbt_msg_t *msg = dbt_msg_recv (router, true, err);
    assert (msg && msg->identity && msg->command == DBT_W_READY);
    assert (streq (msg->signature, DBT_PROTO_WORKER));
    char *hello = NULL;
    assert (dbt_mp_field_str (msg->map, "hello", true, &hello, err) == 0 && streq (hello, "world"));
    free (hello);
    dbt_mpw_map (w);
    dbt_mpw_end (w);
    assert (dbt_msg_send (router, msg->identity, DBT_PROTO_WORKER, DBT_W_JOB, w) == 0);
    dbt_msg_destroy (&msg);
    msg = dbt_msg_recv (dealer, false, err);
    assert (msg && msg->command == DBT_W_JOB && !msg->identity);
    dbt_msg_destroy (&msg);

    zstr_sendx (dealer, "DBTW01", "x", NULL);                    //  too few frames
    assert (dbt_msg_recv (router, true, err) == NULL && strstr (err, "frames"));
    zstr_sendx (dealer, "HTTP/1", "x", "y", NULL);               //  wrong signature
    assert (dbt_msg_recv (router, true, err) == NULL && strstr (err, "signature"));
    zstr_sendx (dealer, DBT_PROTO_CLIENT, "xx", "y", NULL);      //  long command
    assert (dbt_msg_recv (router, true, err) == NULL && strstr (err, "command"));
    zstr_sendx (dealer, DBT_PROTO_CLIENT, "x", "\x92\x01", NULL);  //  truncated
    assert (dbt_msg_recv (router, true, err) == NULL && strstr (err, "bad body"));
    zstr_sendx (dealer, DBT_PROTO_CLIENT, "x", "\x91\x01", NULL);  //  not a map
    assert (dbt_msg_recv (router, true, err) == NULL && strstr (err, "map"));

    //  The same checks without a socket: the message is consumed.
    zmsg_t *raw = zmsg_new ();
    zmsg_addstr (raw, DBT_PROTO_CLIENT);
    zmsg_addmem (raw, "\x06", 1);
    zmsg_addmem (raw, "\x80", 1);
    msg = dbt_msg_parse (&raw, false, err);
    assert (msg && !raw && msg->command == DBT_C_PING && msg->map->via.map.size == 0);
    dbt_msg_destroy (&msg);
    raw = zmsg_new ();
    zmsg_addstr (raw, DBT_PROTO_CLIENT);
    zmsg_addmem (raw, "\x06", 1);
    zmsg_addmem (raw, "\x80", 1);
    assert (dbt_msg_parse (&raw, true, err) == NULL && !raw && strstr (err, "frames"));

    //  Floats.
    dbt_mpw_reset (w);
    dbt_mpw_array (w);
    dbt_mpw_f64 (w, -2.25);
    dbt_mpw_end (w);
    size_t flen;
    const char *fdata = dbt_mpw_data (w, &flen);
    dbt_mpr_t *floats = dbt_mpr_new (fdata, flen, err);
    assert (floats && dbt_mpr_root (floats)->via.array.ptr [0].type == MSGPACK_OBJECT_FLOAT64);
    assert (dbt_mpr_root (floats)->via.array.ptr [0].via.f64 == -2.25);
    dbt_mpr_destroy (&floats);

    zsock_destroy (&dealer);
    zsock_destroy (&router);
    dbt_mpw_destroy (&w);
    if (verbose)
        printf ("msg: ok\n");
}
