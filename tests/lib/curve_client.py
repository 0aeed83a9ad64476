#!/usr/bin/python3
"""curve_client.py - ask a dungbeetle dispatcher over CURVE (tests/integration/curve.sh)

    curve_client.py ENDPOINT CLIENT_CERT SERVER_CERT [STATUS JOB_ID]

Connects a DEALER with the client's key pair (a czmq zcert file, e.g. from
dungbeetle --new-keys) to ENDPOINT, whose public key is in SERVER_CERT, and
sends PING (or STATUS JOB_ID) in the client protocol (docs/protocol.md).
Prints the reply's code and data as JSON and exits 0 on a reply, 2 when
none comes within 3 seconds (a refused key gets none: the CURVE handshake
fails and no message passes).
"""
import json
import sys

import msgpack
import zmq
import zmq.auth


def main():
    if len(sys.argv) not in (4, 6):
        sys.stderr.write(__doc__)
        return 64
    endpoint, client_cert, server_cert = sys.argv[1:4]
    client_public, client_secret = zmq.auth.load_certificate(client_cert)
    server_public, _ = zmq.auth.load_certificate(server_cert)
    if not client_secret:
        sys.stderr.write("curve_client: %s holds no secret key\n" % client_cert)
        return 64
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_publickey = client_public
    sock.curve_secretkey = client_secret
    sock.curve_serverkey = server_public
    sock.connect(endpoint)
    if len(sys.argv) == 6 and sys.argv[4] == "STATUS":
        command, body = b"\x03", {"rid": 7, "job_id": sys.argv[5]}
    else:
        command, body = b"\x06", {"rid": 7}
    sock.send_multipart([b"DBTC01", command, msgpack.packb(body)])
    if not sock.poll(3000):
        print("no reply")
        return 2
    frames = sock.recv_multipart()
    reply = msgpack.unpackb(frames[-1], raw=False)
    print(json.dumps({"code": reply.get("code"), "data": reply.get("data")}, default=str))
    return 0 if reply.get("rid") == 7 else 1


if __name__ == "__main__":
    sys.exit(main())
