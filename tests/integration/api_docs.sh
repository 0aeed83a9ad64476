#!/bin/bash
#  api_docs.sh - runs every example of docs/api.md, in order, against a node
#  started from the sample configuration, and checks each prints what the
#  document shows (JSON compared as data; times and the node name ignored;
#  asynchronous results retried for up to 10 s).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
need "jq" command -v jq

node_dir
cd "$NODE_DIR" || bail "no node dir"
"$DBT_BIN" --new-config > /dev/null || bail "--new-config failed"
node_config a < <(sed -e "s|^server = .*|server = 127.0.0.1:@HTTP@|" \
                      -e "s|^bind = .*|bind = tcp://127.0.0.1:@MESH@|" config.ini)
node_start a || bail "node did not start"

/usr/bin/python3 - "$top_srcdir/docs/api.md" "$a_HTTP" <<'PY'
import json, re, subprocess, sys, time
doc, port = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)
VOLATILE = {"node", "dispatcher", "state_store_usage", "used_bytes", "disk_free_bytes", "reserve_bytes"}
def scrub(v):
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items() if not k.endswith("_at") and k not in VOLATILE}
    if isinstance(v, list):
        return [scrub(x) for x in v]
    return v
n = failed = 0
i = 0
while i < len(blocks):
    lang, body = blocks[i]
    if lang != "sh" or i + 1 >= len(blocks):
        i += 1
        continue
    want_lang, want = blocks[i + 1]
    i += 2
    cmd = body.strip().replace("127.0.0.1:6060", "127.0.0.1:" + port)
    n += 1
    deadline = time.time() + 10
    while True:
        got = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True).stdout
        if want_lang == "json":
            try:
                ok = scrub(json.loads(got)) == scrub(json.loads(want))
            except ValueError:
                ok = False
        else:
            ok = got.replace("\r\n", "\n").strip() == want.strip()
        if ok or time.time() > deadline:
            break
        time.sleep(0.2)
    print("%s %d - %s" % ("ok" if ok else "not ok", n, body.strip()[:120]))
    if not ok:
        failed += 1
        print("#   got:      " + got.strip()[:600].replace("\n", "\n#             "))
        print("#   expected: " + want.strip()[:600].replace("\n", "\n#             "))
print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
