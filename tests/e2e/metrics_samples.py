#!/usr/bin/env python3
"""Parses a Prometheus text exposition (file argument) with python3-prometheus-client's
parser and prints its samples as a JSON array of {"name", "labels", "value", "family",
"type"} (family and type: the family's, as the parser names it: a counter without _total). Exits 1 with the parser's error when the text does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append({"name": s.name, "labels": s.labels, "value": s.value,
                        "family": fam.name, "type": fam.type})
    print(json.dumps(out))
except Exception as e:  # the parser raises ValueError and others on malformed text
    print("parse error:", e, file=sys.stderr)
    sys.exit(1)
