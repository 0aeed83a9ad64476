#!/usr/bin/python3
"""dungbeetle_client - a dungbeetle node's client endpoint from Python.

Needs Debian's python3-zmq and python3-msgpack. As a module:

    from dungbeetle_client import Client, DungbeetleError
    c = Client("tcp://127.0.0.1:6072")        # with CURVE keys, add:
    #   client_cert="keys/script_secret", server_key="keys/mesh"
    job = c.submit("report", ["2024-01-01"], id="r1")
    status = c.wait(job, progress=lambda p: print(p["state"], p["rows"]))
    page = c.results(job, limit=100)           # {"columns": [...], "rows": [[...]]}

As a command it takes the same commands, options (--client-cert and
--server-key for a node with CURVE keys) and exit codes as
dungbeetle-client(1): submit, status, wait, cancel, results, tasks, pending;
a refused CURVE key raises DungbeetleError(401) and exits 2.
The protocol is docs/protocol.md ("Client endpoint").
"""

import argparse
import calendar
import csv
import json
import os
import random
import sys
import time

import msgpack
import zmq
import zmq.auth
import zmq.utils.monitor
import zmq.utils.z85

SIGNATURE = b"DBTC01"
SUBMIT, CANCEL, STATUS, GROUP, PENDING, PING = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
TASKS, RESULTS, WAIT = 0x40, 0x41, 0x42
REPLY, PROGRESS = 0x80, 0x81
DEFAULT_ENDPOINT = "tcp://127.0.0.1:6072"

#  Exit codes of the command (as dungbeetle-client).
EXIT_FAILED, EXIT_USAGE, EXIT_NOTFOUND, EXIT_CONN, EXIT_ERROR = 1, 2, 3, 4, 5


class DungbeetleError(Exception):
    """A request failed: code is the reply's (HTTP-like: 400, 404, 409, ...),
    or 0 when the node could not be reached or did not answer."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _load_cert(path, secret):
    """(public, secret) of a czmq zcert file; NAME_secret is read when it
    sits beside NAME and a secret is wanted."""
    if secret and os.path.isfile(path + "_secret"):
        path = path + "_secret"
    if not os.path.isfile(path):
        raise DungbeetleError(400, "cannot load '%s': no such file" % path)
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except Exception as error:
        raise DungbeetleError(400, "cannot load '%s': not a CURVE certificate (%s)" % (path, error))
    if secret and not secret_key:
        raise DungbeetleError(400, "cannot load '%s': it holds no secret key (give the NAME_secret "
                              "file)" % path)
    return public, secret_key


def _is_key(text):
    try:
        return len(text) == 40 and len(zmq.utils.z85.decode(text.encode())) == 32
    except Exception:
        return False


def _client_keys(client_cert, server_key):
    """(public, secret, server) keys for a CURVE client socket."""
    try:
        public, secret = _load_cert(client_cert, True)
    except DungbeetleError as error:
        raise DungbeetleError(400, "client certificate: " + error.message)
    if _is_key(server_key) and not os.path.isfile(server_key):
        server = server_key.encode()
    else:
        try:
            server, _ = _load_cert(server_key, False)
        except DungbeetleError as error:
            raise DungbeetleError(400, "server key: not 40 Z85 characters, and " + error.message)
    return public, secret, server


class Client:
    """One DEALER connected to a node's client endpoint. Not thread-safe."""

    def __init__(self, endpoint=DEFAULT_ENDPOINT, timeout_ms=30000, token=None, context=None,
                 client_cert=None, server_key=None):
        """client_cert (this client's NAME_secret file from dungbeetle
        --new-keys) and server_key (the node's public key: 40 Z85 characters
        or its public cert file) turn on CURVE, for a node with [mesh]
        curve_cert; unusable keys raise DungbeetleError(400). A node that
        refuses the key makes requests raise DungbeetleError(401)."""
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.token = token
        self._monitor = None
        self._secured = False
        if (client_cert is None) != (server_key is None):
            raise DungbeetleError(400, "CURVE needs both a client certificate and the server's key")
        keys = _client_keys(client_cert, server_key) if client_cert is not None else None
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if keys:
            self._socket.curve_publickey, self._socket.curve_secretkey, self._socket.curve_serverkey = keys
            #  Handshake events, so that a refused key is told apart from a
            #  node that does not answer.
            self._monitor = self._socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        self._socket.connect(endpoint)
        self._rid = random.getrandbits(62)

    def close(self):
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        self._socket.close(0)

    def _handshake_event(self):
        """Read one monitor event: raise on a failed handshake."""
        event = zmq.utils.monitor.recv_monitor_message(self._monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._secured = True
            return
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            raise DungbeetleError(401, "the node at %s refused this client's CURVE key (it is not "
                                  "in the node's [mesh] curve_allow)" % self.endpoint)
        raise DungbeetleError(401, "CURVE handshake with %s failed: a wrong server key, or the "
                              "node does not use CURVE" % self.endpoint)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    #  ----------------------------------------------------------------------
    #  Transport

    def call(self, command, fields=None, timeout_ms=None, progress=None):
        """Send one request; return the reply's data or raise DungbeetleError.
        progress(map) is called with each PROGRESS frame of this request."""
        self._rid += 1
        body = dict(fields or {})
        body["rid"] = self._rid
        if self.token:
            body["token"] = self.token
        self._socket.send_multipart([SIGNATURE, bytes([command]), msgpack.packb(body, use_bin_type=True)])
        limit = self.timeout_ms if timeout_ms is None else timeout_ms
        deadline = None if limit <= 0 else time.monotonic() + limit / 1000.0
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(poller.poll(left if left is not None else None)) if left != 0 else {}
            if not ready:
                raise DungbeetleError(0, "%s did not answer within %d ms" % (self.endpoint, limit))
            if self._monitor in ready:
                self._handshake_event()
            if self._socket not in ready:
                continue
            frames = self._socket.recv_multipart()
            if len(frames) != 3 or frames[0] != SIGNATURE or len(frames[1]) != 1:
                continue
            try:
                reply = msgpack.unpackb(frames[2], raw=False)
            except Exception:
                continue
            if not isinstance(reply, dict) or reply.get("rid") != self._rid:
                continue                    # a late reply to an earlier request
            if frames[1][0] == PROGRESS:
                if progress:
                    progress(reply)
                continue
            if frames[1][0] != REPLY:
                continue
            if reply.get("code") != 200:
                raise DungbeetleError(reply.get("code", 500), reply.get("message", "request failed"))
            return reply.get("data")

    #  ----------------------------------------------------------------------
    #  The job API

    @staticmethod
    def job(task, args=None, id=None, queue=None, db=None, eta_ms=0, ttl_ms=None,
            results_ttl_ms=None, retries=0):
        """A job request map (docs/protocol.md, "Job request")."""
        job = {"task": task, "args": list(args or []), "eta": eta_ms, "retries": retries}
        for key, value in (("id", id), ("queue", queue), ("db", db), ("ttl", ttl_ms),
                           ("results_ttl", results_ttl_ms)):
            if value is not None:
                job[key] = value
        return job

    def submit(self, task, args=None, **options):
        """Submit one job; returns its id."""
        return self.call(SUBMIT, {"jobs": [self.job(task, args, **options)]})["job_id"]

    def submit_group(self, jobs, group_id=None, concurrency=0):
        """Submit job maps (Client.job) as a group; returns the group id."""
        group = {"concurrency": concurrency}
        if group_id:
            group["id"] = group_id
        return self.call(SUBMIT, {"jobs": list(jobs), "group": group})["group_id"]

    def status(self, job_id):
        return self.call(STATUS, {"job_id": job_id})

    def group_status(self, group_id):
        return self.call(GROUP, {"group_id": group_id})

    def wait(self, job_id, timeout_ms=0, progress=None):
        """Wait for SUCCESS or FAILURE; returns the final status."""
        limit = 0 if timeout_ms <= 0 else timeout_ms + self.timeout_ms
        return self.call(WAIT, {"job_id": job_id, "timeout": timeout_ms}, timeout_ms=limit,
                         progress=progress)

    def cancel(self, job_id, purge=False):
        return self.call(CANCEL, {"job_id": job_id, "purge": purge})

    def cancel_group(self, group_id, purge=False):
        return self.call(CANCEL, {"group_id": group_id, "purge": purge})

    def results(self, job_id, offset=0, limit=1000):
        """One page: {job_id, columns: [{name, type}], rows: [[...]], offset, limit}."""
        return self.call(RESULTS, {"job_id": job_id, "offset": offset, "limit": limit})

    def all_results(self, job_id, offset=0, limit=0, page=1000):
        """(columns, row iterator) over rows offset.. (limit rows, 0 = all)."""
        first = self.results(job_id, offset, min(page, limit) if limit else page)

        def rows():
            current, left, at = first, limit, offset
            while True:
                for row in current["rows"]:
                    yield row
                got = len(current["rows"])
                at += got
                left = left - got if limit else 0
                if got < current["limit"] or (limit and left <= 0):
                    return
                current = self.results(job_id, at, min(page, left) if limit else page)
        return first["columns"], rows()

    def tasks(self):
        return self.call(TASKS)

    def pending(self, queue):
        return self.call(PENDING, {"queue": queue})

    def ping(self):
        return self.call(PING)


#  --------------------------------------------------------------------------
#  Command line

def _exit_code(error):
    if error.code == 0:
        return EXIT_CONN
    if error.code in (400, 401, 413):
        return EXIT_USAGE
    if error.code in (404, 410):
        return EXIT_NOTFOUND
    if error.code in (408, 504):
        return EXIT_CONN
    return EXIT_ERROR


def _eta(text):
    if text.startswith("+") and text[1:].isdigit():
        return (int(time.time()) + int(text[1:])) * 1000
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return calendar.timegm(time.strptime(text, form)) * 1000
        except ValueError:
            pass
    raise argparse.ArgumentTypeError("--eta is +SECONDS, 'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DDTHH:MM:SSZ")


def _wait(client, job_id):
    tty = sys.stderr.isatty()
    shown = [False]

    def progress(p):
        if tty:
            sys.stderr.write("\r\033[K%s  %-8s  rows %d  elapsed %.1fs"
                             % (p["job_id"], p["state"], p["rows"], p["elapsed_ms"] / 1000.0))
            shown[0] = True
        else:
            sys.stderr.write("%s %s rows=%d elapsed_ms=%d\n"
                             % (p["job_id"], p["state"], p["rows"], p["elapsed_ms"]))
        sys.stderr.flush()
    status = client.wait(job_id, progress=progress)
    if shown[0]:
        sys.stderr.write("\n")
    error = " error=" + status["error"] if status.get("error") else ""
    print("%s %s rows=%d%s" % (status["job_id"], status["state"], status.get("rows", 0), error))
    return 0 if status["state"] == "SUCCESS" else EXIT_FAILED


def main(argv=None):
    parser = argparse.ArgumentParser(prog="dungbeetle_client.py",
                                     description="client of a dungbeetle node's client endpoint")
    parser.add_argument("--endpoint", default=os.environ.get("DUNGBEETLE_ENDPOINT") or DEFAULT_ENDPOINT)
    parser.add_argument("--token")
    parser.add_argument("--timeout", type=int, default=30000, help="answer limit in ms")
    parser.add_argument("--client-cert", default=os.environ.get("DUNGBEETLE_CLIENT_CERT") or None,
                        help="this client's CURVE cert (NAME_secret); default $DUNGBEETLE_CLIENT_CERT")
    parser.add_argument("--server-key", default=os.environ.get("DUNGBEETLE_SERVER_KEY") or None,
                        help="the node's public key, 40 Z85 characters or its public cert file; "
                        "default $DUNGBEETLE_SERVER_KEY")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit")
    p.add_argument("task")
    p.add_argument("args", nargs="*")
    p.add_argument("--id")
    p.add_argument("--queue")
    p.add_argument("--eta", type=_eta, default=0)
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--ttl", type=int, help="run-time limit in seconds")
    p.add_argument("--wait", action="store_true")
    for name in ("status", "wait"):
        sub.add_parser(name).add_argument("id")
    p = sub.add_parser("cancel")
    p.add_argument("id")
    p.add_argument("--purge", action="store_true")
    p = sub.add_parser("results")
    p.add_argument("id")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--offset", type=int, default=0)
    sub.add_parser("tasks")
    sub.add_parser("pending").add_argument("queue")
    try:
        opts = parser.parse_args(argv)
    except SystemExit as exit:
        return EXIT_USAGE if exit.code else 0
    try:
        client = Client(opts.endpoint, timeout_ms=opts.timeout, token=opts.token,
                        client_cert=opts.client_cert, server_key=opts.server_key)
    except DungbeetleError as error:
        sys.stderr.write("dungbeetle_client.py: %s\n" % error.message)
        return EXIT_USAGE
    try:
        if opts.command == "submit":
            job_id = client.submit(opts.task, opts.args, id=opts.id, queue=opts.queue, eta_ms=opts.eta,
                                   retries=opts.retries,
                                   ttl_ms=None if opts.ttl is None else opts.ttl * 1000)
            print(job_id, flush=True)
            return _wait(client, job_id) if opts.wait else 0
        if opts.command == "status":
            status = client.status(opts.id)
            for key, value in status.items():
                print("%s: %s" % (key, value))
            return EXIT_FAILED if status.get("state") == "FAILURE" else 0
        if opts.command == "wait":
            return _wait(client, opts.id)
        if opts.command == "cancel":
            client.cancel(opts.id, opts.purge)
            return 0
        if opts.command == "results":
            columns, rows = client.all_results(opts.id, opts.offset, opts.limit)
            if opts.format == "csv":
                out = csv.writer(sys.stdout, lineterminator="\n")
                out.writerow([c["name"] for c in columns])
                for row in rows:
                    out.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v)
                                  for v in row])
            else:
                json.dump({"job_id": opts.id, "columns": columns, "rows": list(rows)}, sys.stdout)
                print()
            return 0
        if opts.command == "tasks":
            for name, task in sorted(client.tasks().items()):
                print("%s\t%s" % (name, task.get("queue", "")))
            return 0
        if opts.command == "pending":
            for item in client.pending(opts.queue):
                print("%s\t%s" % (item.get("ID", ""), item.get("Status", "")))
            return 0
    except DungbeetleError as error:
        sys.stderr.write("dungbeetle_client.py: %s: %s\n" % (opts.command, error.message))
        return _exit_code(error)
    finally:
        client.close()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
