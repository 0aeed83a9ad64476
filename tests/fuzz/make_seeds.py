#!/usr/bin/env python3
"""make_seeds.py - write the hand-made seed corpora of the fuzz targets

Usage: tests/fuzz/make_seeds.py tests/fixtures
Writes tests/fixtures/{msg,ch_native,config}/ (msgpack frames, ClickHouse
Native streams and INI files are easier to build here than by hand); the
other corpora are plain text files kept as they are. File names follow
tests/fuzz.t: valid_* must be accepted, broken_* refused. Inputs found by
fuzzing are added by hand, not by this script.
"""
import struct, os, sys
root = sys.argv[1]
def w(d, name, data):
    os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, d, name), 'wb') as f:
        f.write(data)

# ---- msgpack encoder
def mp(v):
    if v is None: return b'\xc0'
    if v is True: return b'\xc3'
    if v is False: return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        if -32 <= v < 0: return struct.pack('b', v)
        if v >= 0: return b'\xcf' + struct.pack('>Q', v)
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, (str, bytes)):
        b = v.encode() if isinstance(v, str) else v
        if len(b) < 32: return bytes([0xa0 | len(b)]) + b
        return b'\xd9' + bytes([len(b)]) + b
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b'\xdc' + struct.pack('>H', len(v))
        return head + b''.join(mp(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b'\xde' + struct.pack('>H', len(v))
        return head + b''.join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)
SEP = b'\x1e\x1e'
def msg(router, frames):
    return bytes([1 if router else 0]) + SEP.join(frames)
job = {"id": "j1", "task": "t", "queue": "default", "args": ["a", None], "eta": 0, "ttl": 0,
       "retries": 2, "rttl": 0, "state": 1, "attempts": 1, "lost": 0, "seq": 5, "rows": 10,
       "worker": "w", "created": 1000, "started": 2000, "finished": 0, "cancelled": False,
       "expired": False}
submit = {"jobs": [{"task": "t", "id": "a1", "queue": "q", "args": [], "eta": 0, "retries": 1},
                   {"task": "two", "args": ["x", "y"], "db": "b", "ttl": 5000}],
          "group": {"id": "g1", "concurrency": 2}}
group = {"id": "g1", "concurrency": 3, "created": 5, "jobs": ["a", "b-2", "c:3"]}
w('msg', 'valid_submit_router', msg(True, [b'\x00\x6b\x8b\x45\x67', b'DBTC01', b'\x01', mp(submit)]))
w('msg', 'valid_job_worker', msg(False, [b'DBTW01', b'\x20', mp({"job": job})]))
w('msg', 'valid_record', msg(False, [b'DBTW01', b'\x13', mp(job)]))
w('msg', 'valid_group', msg(False, [b'DBTC01', b'\x80', mp(group)]))
w('msg', 'valid_ready', msg(True, [b'id', b'DBTW01', b'\x10', mp({"queues": ["q"], "credit": 4, "name": "w1"})]))
w('msg', 'valid_empty_map', msg(False, [b'DBTC01', b'\x06', b'\x80']))
w('msg', 'broken_frames', msg(False, [b'DBTW01', b'x']))
w('msg', 'broken_signature', msg(False, [b'HTTP/1', b'x', b'\x80']))
w('msg', 'broken_command', msg(False, [b'DBTC01', b'xx', b'\x80']))
w('msg', 'broken_truncated', msg(False, [b'DBTC01', b'\x01', b'\x92\x01']))
w('msg', 'broken_not_map', msg(False, [b'DBTC01', b'\x01', b'\x91\x01']))
w('msg', 'broken_huge_array', msg(False, [b'DBTC01', b'\x01', b'\xdd\x7f\xff\xff\xff\x01']))
w('msg', 'broken_huge_str', msg(False, [b'DBTC01', b'\x01', b'\x81\xa1k\xdb\x7f\xff\xff\xff']))
w('msg', 'broken_deep', msg(False, [b'DBTC01', b'\x01', b'\x91' * 70 + b'\x01']))
w('msg', 'broken_trailing', msg(False, [b'DBTC01', b'\x01', b'\x80\x01']))
w('msg', 'broken_bad_byte', msg(False, [b'DBTC01', b'\x01', b'\xc1']))
w('msg', 'broken_router_no_identity', msg(True, [b'DBTC01', b'\x01', b'\x80']))
w('msg', 'valid_ext_float', msg(False, [b'DBTC01', b'\x01', b'\x83\xa1a\xd6\x01\x00\x00\x00\x00\xa1b\xcb' + struct.pack('>d', 1.5) + b'\xa1c\xca' + struct.pack('>f', 2.5)]))
bad_job = dict(job); bad_job["id"] = "bad id!"; bad_job["state"] = 9
w('msg', 'record_bad_fields', msg(False, [b'DBTW01', b'\x13', mp(bad_job)]))
w('msg', 'broken_empty', b'')

# ---- ClickHouse Native
def varint(v):
    out = b''
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80]); v >>= 7
    return out + bytes([v])
def s(b):
    b = b.encode() if isinstance(b, str) else b
    return varint(len(b)) + b
def col(name, typ, data):
    return s(name) + s(typ) + data
def block(nrows, cols):
    return varint(len(cols)) + varint(nrows) + b''.join(cols)
def le(v, n, signed=False):
    return v.to_bytes(n, 'little', signed=signed)
def ch(limit, seed, stream):
    return bytes([limit, seed]) + stream
b1 = block(3, [
    col('id', 'Int64', b''.join(le(v, 8, True) for v in (1, -2, 3))),
    col('s', 'String', s('a') + s('') + s('x\ty\n')),
    col('n', 'Nullable(String)', b'\x00\x01\x00' + s('p') + s('') + s('q')),
    col('d', 'Date', b''.join(le(v, 2) for v in (0, 19782, 65535))),
    col('t', 'DateTime', b''.join(le(v, 4) for v in (0, 1704164645, 4294967295))),
    col('f', 'Float64', b''.join(struct.pack('<d', v) for v in (0.1, float('nan'), -1e300))),
    col('u', 'UInt8', b'\x00\x01\xff'),
])
b2 = block(2, [
    col('dec', 'Decimal(12, 2)', le(12345, 8, True) + le(-5, 8, True)),
    col('fs', 'FixedString(3)', b'ab\x00xyz'),
    col('a', 'Array(Int32)', le(2, 8) + le(2, 8) + le(7, 4, True) + le(-7, 4, True)),
    col('e', "Enum8('a' = 1, 'b' = -2)", b'\x01\xfe'),
    col('dt64', "DateTime64(3, 'UTC')", le(1704164645123, 8, True) + le(0, 8, True)),
    col('uuid', 'UUID', bytes(range(16)) + bytes(16)),
    col('ip', 'IPv4', le(0x7f000001, 4) + le(0, 4)),
])
b3 = block(2, [
    col('tu', 'Tuple(UInt16, String)', le(1, 2) + le(2, 2) + s('x') + s('y')),
    col('na', 'Array(Nullable(Int8))', le(1, 8) + le(3, 8) + b'\x00\x01\x00' + b'\x05\x00\xfb'),
    col('u64', 'UInt64', le(2**64 - 1, 8) + le(0, 8)),
    col('b', 'Bool', b'\x01\x00'),
    col('d32', 'Date32', le(-1, 4, True) + le(0, 4, True)),
    col('f32', 'Float32', struct.pack('<f', 1.5) + struct.pack('<f', float('inf'))),
])
exc = b"Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception\n"
w('ch_native', 'valid_empty', ch(2, 0, b''))
w('ch_native', 'valid_one_block', ch(2, 0, b1))
w('ch_native', 'valid_one_block_pieces', ch(2, 7, b1))
w('ch_native', 'valid_two_blocks', ch(2, 255, b1 + block(1, [
    col('id', 'Int64', le(4, 8)), col('s', 'String', s('b')), col('n', 'Nullable(String)', b'\x01' + s('')),
    col('d', 'Date', le(1, 2)), col('t', 'DateTime', le(1, 4)), col('f', 'Float64', struct.pack('<d', 2.0)),
    col('u', 'UInt8', b'\x02')])))
w('ch_native', 'valid_types', ch(2, 3, b2))
w('ch_native', 'valid_more_types', ch(3, 1, b3))
w('ch_native', 'valid_empty_block_end', ch(2, 1, b2 + block(0, [col(n, t, b'') for n, t in [
    ('dec', 'Decimal(12, 2)'), ('fs', 'FixedString(3)'), ('a', 'Array(Int32)'), ('e', "Enum8('a' = 1, 'b' = -2)"),
    ('dt64', "DateTime64(3, 'UTC')"), ('uuid', 'UUID'), ('ip', 'IPv4')]])))
w('ch_native', 'broken_exception', ch(2, 5, b1 + exc))
w('ch_native', 'broken_truncated', ch(2, 2, b1[:-5]))
w('ch_native', 'broken_too_big', ch(0, 0, b1))
w('ch_native', 'broken_unknown_type', ch(2, 0, block(1, [col('m', 'Map(String, UInt8)', b'\x00')])))
w('ch_native', 'broken_bad_type_name', ch(2, 0, block(1, [col('x', 'Nullable(Int8', b'\x00\x01')])))
w('ch_native', 'broken_columns_change', ch(2, 4, b1 + block(1, [col('x', 'UInt8', b'\x01')])))
w('ch_native', 'broken_huge_varint', ch(3, 0, b'\xff' * 10 + b'\x01'))
w('ch_native', 'broken_array_offsets', ch(2, 0, block(2, [col('a', 'Array(Int32)', le(5, 8) + le(2, 8) + le(1, 4))])))
w('ch_native', 'broken_control_only', b'\x02')

# ---- config
cfgs = {
 'valid_minimal.ini': "[db.src]\ntype = sqlite\ndsn = s.db\n[results.res]\ntype = sqlite\ndsn = r.db\n",
 'valid_full.ini': """; every section
log_level = WARN
[app]
server = 127.0.0.1:6061
queue = reports
worker_name = node-1
worker_concurrency = 4
sql_directory = ./sql, ./more
data_dir = ./state
max_body_size = 2MB
request_timeout = 1m30s
auth_token = secret
state_map_size = 64MiB
retry_backoff = 2s
retry_backoff_max = 1h
results_ttl = 24h
state_ttl = 0
shutdown_timeout = 10s
max_interruptions = 5
default_job_ttl = 5m
[mesh]
bind = tcp://127.0.0.1:7070
dispatcher = tcp://10.0.0.1:7070
heartbeat_interval = 500ms
heartbeat_liveness = 4
[db.pg]
type = postgres
dsn = host=127.0.0.1 dbname=x
max_active = 5
max_idle = 2
connect_timeout = 3s
[db.lite]
type = sqlite
dsn = a.db
sample_data = true
[results.out]
type = mysql
dsn = mysql://u:p@127.0.0.1:3306/r
results_table = res_%s_t
[results.pgout]
type = postgres
dsn = postgres://u@h/db
unlogged = true
[queue.reports]
concurrency = 3
dispatcher = tcp://127.0.0.1:7071
[queue.other]
""",
 'valid_clickhouse.ini': "[db.ch]\ntype = clickhouse\ndsn = http://127.0.0.1:8123/?database=default\n[results.r]\ntype = sqlite\ndsn = r.db\n",
 'broken_empty.ini': "",
 'valid_comments_crlf.ini': "; comment\r\n# other\r\n[app]\r\nqueue = q1\r\n\r\n[db.a]\r\ntype = sqlite\r\ndsn = a.db\r\n[results.b]\r\ntype = sqlite\r\ndsn = b.db\r\n",
 'broken_unknown_key.ini': "[app]\nnope = 1\n",
 'broken_unknown_section.ini': "[nope]\nx = 1\n",
 'broken_syntax.ini': "[app\nqueue = q\n",
 'broken_no_equals.ini': "[app]\nqueue\n",
 'broken_duration.ini': "[app]\nrequest_timeout = soon\n",
 'broken_range.ini': "[app]\nworker_concurrency = 0\n",
 'broken_size.ini': "[app]\nmax_body_size = 1PB\n",
 'broken_db_type.ini': "[db.x]\ntype = oracle\ndsn = x\n",
 'broken_db_missing_dsn.ini': "[db.x]\ntype = sqlite\n",
 'broken_results_clickhouse.ini': "[results.x]\ntype = clickhouse\ndsn = http://h:8123/\n",
 'broken_table_format.ini': "[results.x]\ntype = sqlite\ndsn = r.db\nresults_table = t_%s_%s\n",
 'broken_endpoint.ini': "[mesh]\nbind = http://x\n",
 'broken_backoff.ini': "[app]\nretry_backoff = 10m\nretry_backoff_max = 1m\n",
 'broken_duplicate_key.ini': "[app]\nqueue = a\nqueue = b\n",
 'broken_queue_name.ini': "[queue.bad name!]\nconcurrency = 1\n",
 'broken_log_level.ini': "log_level = LOUD\n",
 'broken_server.ini': "[app]\nserver = nowhere\n",
 'broken_bool.ini': "[results.x]\ntype = postgres\ndsn = x\nunlogged = maybe\n",
}
for name, text in cfgs.items():
    w('config', name, text.encode())
