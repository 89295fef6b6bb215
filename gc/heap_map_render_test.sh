#!/usr/bin/env bash
# The heap map is well-formed XML, renders to PNG with a real SVG renderer
# (rsvg-convert), and the statistics validate against their JSON Schema.
set -euo pipefail
tool="$1"; schema="$2"
out="${TEST_TMPDIR:-$(mktemp -d)}"
"$tool" "$out/map.svg" "$out/stats.json"
xmllint --noout "$out/map.svg"
rsvg-convert -o "$out/map.png" "$out/map.svg"
head -c 8 "$out/map.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a"
[ "$(stat -c %s "$out/map.png")" -gt 2000 ]
/usr/bin/python3 - "$schema" "$out/stats.json" <<'PY'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
jsonschema.validate(doc, schema)
assert doc["total"]["blocks"] == sum(t["blocks"] for t in doc["tags"]), "tags add up to the total"
for t in doc["tags"]:
    assert t["pages"] == sum(c["pages"] for c in t["size_classes"]), "classes add up to their tag"
print("heap stats JSON valid:", doc["total"]["pages"], "pages")
PY
echo "heap map rendered: $(stat -c %s "$out/map.png") bytes of PNG"
