#!/usr/bin/env bash
# tvm --gc-trace writes Chrome trace-event JSON that loads as JSON, has one
# "collection" span per collection, and whose other spans nest inside the
# collection they belong to (what Perfetto and chrome://tracing show).
set -euo pipefail
tvm=$1
program=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$tvm" --gc-budget=1M --gc-trace="$out/trace.json" "$program" >/dev/null 2>"$out/err" || { cat "$out/err"; exit 1; }
python3 - "$out/trace.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
spans = [e for e in doc["traceEvents"] if e.get("ph") == "X"]
collections = {e["args"]["collection"]: e for e in spans if e["name"] == "collection"}
assert len(collections) >= 3, f"expected several collections, got {len(collections)}"
for e in spans:
    c = collections[e["args"]["collection"]]
    assert e["ts"] >= c["ts"] - 0.001 and e["ts"] + e["dur"] <= c["ts"] + c["dur"] + 0.001, (e, c)
names = {e["name"] for e in spans}
for needed in ("finish sweep", "roots", "mark", "marker 0"):
    assert needed in names, f"no {needed!r} span"
assert doc["otherData"]["dropped_events"] == 0
print(f"{len(collections)} collections, {len(spans)} spans, all nested")
PY
