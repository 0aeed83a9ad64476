/*  =========================================================================
    fuzz_msg - fuzz target for the mesh's msgpack reader and frame checks

    Input: one flags byte, then frames separated by the two bytes 0x1e 0x1e
    (bit 0 of the flags: parse as received on a ROUTER socket, identity
    first). Three things are fed from it:
      - the bytes after the flags as one msgpack document (dbt_mpr_new): a
        document that parses must pack again to bytes that parse and pack
        to the same bytes (or that only the reader's item budget refuses);
      - the frames as one message through the frame checks of
        dbt_msg_recv (dbt_msg_parse): an accepted message has a known
        signature, one command byte and a map body;
      - the maps of both (the root, a "job" and a "group" map, each item of
        a "jobs" array) as job and group records (dbt_job_unpack,
        dbt_group_unpack; a record that unpacks must pack, unpack and pack
        to the same bytes) and as the dispatcher's submit requests
        (dbt_submit_job, dbt_submit_group: 0 or an HTTP-like refusal).

    Seed corpus: tests/fixtures/msg/. Build and run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

#define S_FRAME_SEP "\x1e\x1e"

//  Pack obj with msgpack-c's packer into a writer's bytes (caller frees).
static char *
s_repack (const msgpack_object *obj, size_t *len)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *obj);
    *len = sbuf.size;
    char *copy = (char *) dbt_malloc (sbuf.size ? sbuf.size : 1);
    if (sbuf.size)
        memcpy (copy, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    return copy;
}

//  A parsed document packs again to bytes that parse to the same packing
//  (unless the shorter packing exceeds the reader's items-per-byte budget).
static void
s_check_roundtrip (dbt_mpr_t *reader)
{
    char err [DBT_ERRMSG_LEN];
    size_t len1, len2;
    char *once = s_repack (dbt_mpr_root (reader), &len1);
    dbt_mpr_t *again = dbt_mpr_new (once, len1, err);
    if (!again) {
        //  Only by the item budget (items per byte, against memory blow-up):
        //  a repacking may be shorter (a zero-length str16 becomes one
        //  byte), so it may hold more items per byte than allowed.
        assert (strstr (err, "items in"));
        free (once);
        return;
    }
    char *twice = s_repack (dbt_mpr_root (again), &len2);
    assert (len1 == len2 && memcmp (once, twice, len1) == 0);
    dbt_mpr_destroy (&again);
    free (once);
    free (twice);
}

//  Pack a job or group record and read it back; the packings must match.
static void
s_check_job (const dbt_job_t *job)
{
    char err [DBT_ERRMSG_LEN];
    assert (job->id && dbt_id_valid (job->id) && job->task && job->queue);
    assert (job->state <= DBT_STATE_RETRY);
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_job_pack (job, w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    char *first = dbt_strndup (data, len);
    dbt_mpr_t *reader = dbt_mpr_new (first, len, err);
    assert (reader);
    dbt_job_t *copy = dbt_job_unpack (dbt_mpr_root (reader), err);
    assert (copy && copy->nargs == job->nargs);
    dbt_mpw_reset (w);
    dbt_job_pack (copy, w);
    size_t len2;
    data = dbt_mpw_data (w, &len2);
    assert (len2 == len && memcmp (data, first, len) == 0);
    dbt_job_destroy (&copy);
    dbt_mpr_destroy (&reader);
    free (first);
    dbt_mpw_destroy (&w);
}

static void
s_check_group (const dbt_group_t *group)
{
    char err [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < group->njobs; i++)
        assert (dbt_id_valid (group->job_ids [i]));
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_group_pack (group, w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (reader);
    dbt_group_t *copy = dbt_group_unpack (dbt_mpr_root (reader), err);
    assert (copy && copy->njobs == group->njobs && copy->concurrency == group->concurrency);
    dbt_group_destroy (&copy);
    dbt_mpr_destroy (&reader);
    dbt_mpw_destroy (&w);
}

//  Every decoder of maps over one map.
static void
s_decode_map (const msgpack_object *map)
{
    char err [DBT_ERRMSG_LEN];
    dbt_config_t *config;
    dbt_tasks_t *tasks;
    dbt_fuzz_registry (&config, &tasks);
    dbt_job_t *job = dbt_job_unpack (map, err);
    if (job)
        s_check_job (job);
    dbt_job_destroy (&job);
    dbt_group_t *group = dbt_group_unpack (map, err);
    if (group)
        s_check_group (group);
    dbt_group_destroy (&group);
    int code = dbt_submit_job (config, tasks, NULL, map, 7, &job, err);
    assert (code == 0 ? job != NULL : job == NULL && code >= 400 && code < 500);
    if (job) {
        assert (job->task && dbt_tasks_lookup (tasks, job->task));
        assert (job->queue && job->results && job->table);
    }
    dbt_job_destroy (&job);
    code = dbt_submit_group (map, &group, err);
    assert (code == 0 ? group && group->id && dbt_id_valid (group->id) : code == 400 && !group);
    dbt_group_destroy (&group);
}

//  The root map and the maps a submit, a record or a reply nests.
static void
s_decode_all (const msgpack_object *root)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return;
    s_decode_map (root);
    s_decode_map (dbt_mp_get (root, "job"));
    s_decode_map (dbt_mp_get (root, "group"));
    const msgpack_object *jobs = dbt_mp_get (root, "jobs");
    if (jobs && jobs->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < jobs->via.array.size; i++)
            s_decode_map (&jobs->via.array.ptr [i]);
}

int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
{
    if (size == 0) {
        dbt_err_set (err, "empty input");
        return -1;
    }
    bool router = data [0] & 1;
    const uint8_t *rest = data + 1;
    size_t left = size - 1;

    //  The whole rest as one document.
    char perr [DBT_ERRMSG_LEN];
    dbt_mpr_t *reader = dbt_mpr_new (rest, left, perr);
    if (reader) {
        s_check_roundtrip (reader);
        s_decode_all (dbt_mpr_root (reader));
        dbt_mpr_destroy (&reader);
    }
    //  The rest as frames.
    zmsg_t *msg = zmsg_new ();
    while (true) {
        const uint8_t *sep = (const uint8_t *) memmem (rest, left, S_FRAME_SEP, 2);
        size_t flen = sep ? (size_t) (sep - rest) : left;
        zmsg_addmem (msg, rest, flen);
        if (!sep)
            break;
        rest += flen + 2;
        left -= flen + 2;
    }
    size_t frames = zmsg_size (msg);
    dbt_msg_t *parsed = dbt_msg_parse (&msg, router, err);
    assert (msg == NULL);
    if (!parsed) {
        assert (err [0]);
        return -1;
    }
    assert (frames == (router ? 4u : 3u));
    assert (router ? parsed->identity != NULL : parsed->identity == NULL);
    assert (streq (parsed->signature, DBT_PROTO_CLIENT) || streq (parsed->signature, DBT_PROTO_WORKER)
         || streq (parsed->signature, DBT_PROTO_STATE));
    assert (parsed->command >= 0 && parsed->command <= 255);
    assert (parsed->map && parsed->map->type == MSGPACK_OBJECT_MAP);
    s_decode_all (parsed->map);
    dbt_msg_destroy (&parsed);
    return 0;
}
