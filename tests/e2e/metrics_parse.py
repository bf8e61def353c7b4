#!/usr/bin/env python3
"""Parses a Prometheus text exposition (file argument) with python3-prometheus-client's
parser, the one Prometheus client libraries use, and prints one line per family:
"name type samples". Exits 1 with the parser's error when the text does not parse."""
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    for fam in text_string_to_metric_families(text):
        print(fam.name, fam.type, len(fam.samples))
except Exception as e:  # the parser raises ValueError and others on malformed text
    print("parse error:", e, file=sys.stderr)
    sys.exit(1)
