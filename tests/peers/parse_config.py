"""Parse a host configuration file with Python's own parsers and print it as JSON.

Usage: parse_config.py FILE. `.toml` files go through `tomllib` (the standard library's TOML
1.0 parser, as Codex's Rust `toml` reads the same format), everything else through `json`
(strict: no comments, no trailing commas). A file either parser refuses is an exception.
"""

import json
import sys
import tomllib

path = sys.argv[1]
with open(path, "rb") as f:
    data = tomllib.load(f) if path.endswith(".toml") else json.load(f)
print(json.dumps(data))
