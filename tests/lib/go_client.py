#!/usr/bin/python3
"""go_client.py - replay zerodha/dungbeetle's Go client (client/client.go) byte for byte

    go_client.py PORT METHOD [ARG...]   -> one JSON line on stdout

METHOD is one of the client's methods; ARG as the Go call takes them:

    PostJob JOBREQ              JOBREQ: JSON object of models.JobReq fields by
                                Go name (TaskName, JobID, Queue, ETA, Retries,
                                TTL, Args, DB); absent fields are Go zero values
    GetJobStatus ID
    DeleteJob ID true|false
    DeleteGroupJob ID true|false
    GetPendingJobs QUEUE
    PostJobGroup GROUPREQ       GROUPREQ: {"GroupID": ..., "Jobs": [JOBREQ...]}
    GetGroupStatus ID

It sends the request the Go client sends and decodes the answer as
doHTTPReq does, printing {"status", "error", "out", "request"}: "error" is
the error string the Go method would return (null for none), "out" the Go
value it would return (a struct as an object keyed by Go field names, zero
values filled in). What the request holds, and why:

  from client/client.go:
    - paths: "/tasks/%s/jobs" (PostJob, j.TaskName), "/jobs/%s" (GetJobStatus,
      DeleteJob), "/groups/%s" (DeleteGroupJob, GetGroupStatus),
      "/jobs/queue/%s" (GetPendingJobs), "/groups" (PostJobGroup); path
      segments are not escaped;
    - POST bodies are json.Marshal of models.JobReq / models.GroupReq (every
      field, zero values included, in declaration order: task, job_id,
      queue, eta, retries, ttl, args, db; group_id, jobs); Content-Type:
      application/json on POST only;
    - DELETE carries the query purge=true|false (strconv.FormatBool) and no
      body (the operator-precedence quirk of doHTTPReq applies url.Values
      to every DELETE).
  from Go's net/http (the client's transport): the request line in
    HTTP/1.1, then Host, User-Agent: Go-http-client/1.1, Content-Length
    (bodies only), the request's own headers, Accept-Encoding: gzip (the
    transport asks for gzip and decodes it itself).
  encoding/json: compact, '<' '>' '&' escaped as \\u003c \\u003e \\u0026, a nil
    []string as null.

Decoding follows encoding/json into the client's response types: the
envelope models.HTTPResp{status, message, data}, data into models.JobResp
{job_id string, task string, queue string, eta *time.Time, retries int},
models.JobStatusResp {job_id, state string, count int, error string},
models.GroupResp {group_id string, jobs []JobResp}, models.GroupStatusResp
{group_id, state string, jobs []JobStatusResp}, and for GetPendingJobs
[]tasqueue.JobMessage (no json tags, Meta's fields promoted): ID string,
OnSuccessIDs []string, Status string, Queue string, Schedule string,
MaxRetry uint32, Retried uint32, PrevErr string, ProcessedAt time.Time,
PrevJobResult []byte, Job *Job {OnSuccess []*Job, Task string, Payload
[]byte, OnError []*Job, Opts {ID string, ETA time.Time, Queue string,
MaxRetries uint32, Schedule string, Timeout time.Duration}}. Keys match
field names exactly or case-insensitively, unknown keys are ignored, null
leaves the zero value, and a value of the wrong JSON type (a string for an
int, a fraction for an int, a number out of a uint32's range, a string that
is not RFC 3339 for a time.Time or not base64 for a []byte) is an error, as
json.Unmarshal reports it. A non-200 answer gives "CODE: message".
"""

import base64
import binascii
import gzip
import json
import re
import socket
import sys

# ---------------------------------------------------------------- encoding

JOBREQ = [("TaskName", "task", ""), ("JobID", "job_id", ""), ("Queue", "queue", ""),
          ("ETA", "eta", ""), ("Retries", "retries", 0), ("TTL", "ttl", 0),
          ("Args", "args", None), ("DB", "db", "")]


def go_json(value):
    """encoding/json's compact form of a JSON-able value."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def jobreq_json(fields):
    """json.Marshal(models.JobReq{...}) as an ordered dict."""
    unknown = set(fields) - {f for f, _, _ in JOBREQ}
    if unknown:
        raise SystemExit(f"go_client.py: JobReq has no field {sorted(unknown)}")
    return {tag: fields.get(name, zero) for name, tag, zero in JOBREQ}


def request_bytes(port, method, path, body=None):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "User-Agent: Go-http-client/1.1"]
    data = b""
    if body is not None:
        data = go_json(body).encode()
        lines.append(f"Content-Length: {len(data)}")
        lines.append("Content-Type: application/json")
    lines.append("Accept-Encoding: gzip")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def exchange(port, raw):
    """Send raw, read one HTTP/1.1 answer: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("go_client.py: connection closed before the headers")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()

        def more():
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("go_client.py: connection closed in the body")
            return chunk

        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in rest:
                    rest += more()
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    rest += more()
                body += rest[:size]
                rest = rest[size + 2:]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                rest += more()
            body = rest[:length]
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return status, headers, body

# ---------------------------------------------------------------- decoding

class GoError(Exception):
    pass


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

JOBRESP = ("struct", [("JobID", "job_id", "string"), ("TaskName", "task", "string"),
                      ("Queue", "queue", "string"), ("ETA", "eta", "*time"),
                      ("Retries", "retries", "int")])
JOBSTATUS = ("struct", [("JobID", "job_id", "string"), ("State", "state", "string"),
                        ("Count", "count", "int"), ("Error", "error", "string")])
GROUPRESP = ("struct", [("GroupID", "group_id", "string"), ("Jobs", "jobs", ("list", JOBRESP))])
GROUPSTATUS = ("struct", [("GroupID", "group_id", "string"), ("State", "state", "string"),
                          ("Jobs", "jobs", ("list", JOBSTATUS))])
OPTS = ("struct", [(n, n, t) for n, t in [("ID", "string"), ("ETA", "time"), ("Queue", "string"),
                                          ("MaxRetries", "uint32"), ("Schedule", "string"),
                                          ("Timeout", "int64")]])
JOB = ("struct", [])
JOB[1].extend([("OnSuccess", "OnSuccess", ("list", ("ptr", JOB))), ("Task", "Task", "string"),
               ("Payload", "Payload", "bytes"), ("OnError", "OnError", ("list", ("ptr", JOB))),
               ("Opts", "Opts", OPTS)])
JOBMESSAGE = ("struct", [(n, n, t) for n, t in [
    ("ID", "string"), ("OnSuccessIDs", ("list", "string")), ("Status", "string"),
    ("Queue", "string"), ("Schedule", "string"), ("MaxRetry", "uint32"), ("Retried", "uint32"),
    ("PrevErr", "string"), ("ProcessedAt", "time"), ("PrevJobResult", "bytes"),
    ("Job", ("ptr", JOB))]])


def zero(t):
    if t == "string":
        return ""
    if t in ("int", "uint32", "int64"):
        return 0
    if t == "time":
        return "0001-01-01T00:00:00Z"
    if t in ("*time", "bytes", "any") or t[0] in ("list", "ptr"):
        return None
    return {name: zero(ft) for name, _, ft in t[1]}


def decode(v, t, where):
    """v (parsed JSON) into Go type t, as encoding/json; raises GoError."""
    def bad(what):
        raise GoError(f"json: cannot unmarshal {what} into Go value of type {where}")
    if t == "any":
        return v
    if v is None:
        return zero(t)
    if t == "string":
        return v if isinstance(v, str) else bad(type(v).__name__)
    if t in ("int", "int64", "uint32"):
        if isinstance(v, bool) or not isinstance(v, int):
            bad(f"{type(v).__name__} {v!r}")
        lo, hi = (0, 2**32 - 1) if t == "uint32" else (-2**63, 2**63 - 1)
        return v if lo <= v <= hi else bad(f"number {v}")
    if t in ("time", "*time"):
        if not isinstance(v, str) or not RFC3339.match(v):
            bad(f"{v!r} (not RFC 3339)")
        return v
    if t == "bytes":
        if not isinstance(v, str):
            bad(type(v).__name__)
        try:
            base64.b64decode(v, validate=True)
        except binascii.Error:
            bad(f"{v!r} (not base64)")
        return v
    if t[0] == "list":
        return [decode(x, t[1], f"{where}[]") for x in v] if isinstance(v, list) \
            else bad(type(v).__name__)
    if t[0] == "ptr":
        return decode(v, t[1], where)
    if not isinstance(v, dict):
        bad(type(v).__name__)
    out = zero(t)
    for key, value in v.items():
        field = next((f for f in t[1] if f[1] == key), None) \
            or next((f for f in t[1] if f[1].lower() == key.lower()), None)
        if field:
            out[field[0]] = decode(value, field[2], f"{where}.{field[0]}")
    return out


def call(port, method, args):
    outs = {"PostJob": JOBRESP, "GetJobStatus": JOBSTATUS, "DeleteJob": "any",
            "DeleteGroupJob": "any", "GetPendingJobs": ("list", JOBMESSAGE),
            "PostJobGroup": GROUPRESP, "GetGroupStatus": GROUPSTATUS}
    if method not in outs:
        raise SystemExit(f"go_client.py: unknown method {method}")
    body = None
    if method == "PostJob":
        body = jobreq_json(json.loads(args[0]))
        verb, path = "POST", f"/tasks/{body['task']}/jobs"
    elif method == "PostJobGroup":
        group = json.loads(args[0])
        body = {"group_id": group.get("GroupID", ""),
                "jobs": [jobreq_json(j) for j in group.get("Jobs") or []] if group.get("Jobs")
                is not None else None}
        verb, path = "POST", "/groups"
    elif method in ("DeleteJob", "DeleteGroupJob"):
        purge = {"true": "true", "false": "false"}[args[1]]
        base = "/jobs/" if method == "DeleteJob" else "/groups/"
        verb, path = "DELETE", f"{base}{args[0]}?purge={purge}"
    else:
        base = {"GetJobStatus": "/jobs/", "GetPendingJobs": "/jobs/queue/",
                "GetGroupStatus": "/groups/"}[method]
        verb, path = "GET", base + args[0]
    raw = request_bytes(port, verb, path, body)
    status, headers, data = exchange(port, raw)
    out_type = outs[method]
    out = None if out_type == "any" else zero(out_type)
    error = None
    try:
        env = json.loads(data.decode("utf-8"))
        if not isinstance(env, dict):
            raise GoError("json: cannot unmarshal into Go value of type models.HTTPResp")
        message = decode(env.get("message"), "string", "HTTPResp.message")
        decode(env.get("status"), "string", "HTTPResp.status")
        if "data" in env:
            out = decode(env["data"], out_type, "data")
        if status != 200:
            error = f"{status}: {message}"
    except (ValueError, UnicodeDecodeError) as e:
        error = f"error unmarshaling JSON response: {e}"
    except GoError as e:
        error = f"error unmarshaling JSON response: {e}"
    return {"status": status, "error": error, "out": out,
            "request": raw.decode("utf-8", "replace"), "body": data.decode("utf-8", "replace")}


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(json.dumps(call(int(sys.argv[1]), sys.argv[2], sys.argv[3:]), ensure_ascii=False))


if __name__ == "__main__":
    main()
