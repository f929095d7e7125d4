#!/usr/bin/env python3
"""Validate a compose file against the Compose Specification JSON schema.

    python3 tests/assets/check_compose_schema.py docker-compose.yml ../shared/schemas/compose-spec.json

Exit 0 when valid, 1 with one line per error otherwise. Needs PyYAML and
jsonschema. Called by tests/static_assets.rs.
"""

import json
import sys

import jsonschema
import yaml


def main(compose_path, schema_path):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(compose_path, encoding="utf-8") as f:
        document = yaml.safe_load(f)  # resolves anchors and `<<` merge keys
    # The schema declares draft-07 (its $schema URL lacks the trailing '#'
    # that jsonschema looks up, so name the draft here).
    validator_class = jsonschema.Draft7Validator
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        print(f"{compose_path}: {where}: {e.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
