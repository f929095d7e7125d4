#!/usr/bin/env python3
"""Render the rules, the PrometheusRule and the dashboards from the mixin.

    mixin/render.py                      write them into the repository (`make mixin`)
    mixin/render.py --out DIR            write them under DIR instead
    mixin/render.py --config FILE --out DIR
                                         with _config overridden by the object in FILE
                                         (a jsonnet file, e.g. mixin/tests/custom-config.libsonnet)

Evaluates mixin/render.jsonnet with go-jsonnet's Python module (PyPI
`gojsonnet`) or, where it is missing, the `jrsonnet` binary (crate
`jrsonnet`); scripts/install-deps.sh installs one of them. Both print the
same files. Prints one line per file written.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def evaluate(path, tla):
    """JSON text of a jsonnet file evaluated with top-level code arguments."""
    try:
        import _gojsonnet
    except ImportError:
        _gojsonnet = None
    if _gojsonnet is not None:
        return _gojsonnet.evaluate_file(str(path), tla_codes=tla)
    jrsonnet = shutil.which("jrsonnet") or shutil.which(os.path.expanduser("~/.cargo/bin/jrsonnet"))
    if jrsonnet is None:
        raise FileNotFoundError(
            "no jsonnet implementation: python3 -m pip install gojsonnet, or "
            "cargo install --locked jrsonnet (scripts/install-deps.sh does)")
    cmd = [jrsonnet]
    for name, code in tla.items():
        cmd += ["--tla-code", f"{name}={code}"]
    run = subprocess.run(cmd + [str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip())
    return run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT), help="output directory (default: the repository)")
    parser.add_argument("--config", help="jsonnet file whose object overrides _config")
    args = parser.parse_args()
    tla = {}
    if args.config:
        config = pathlib.Path(args.config).resolve()
        if not config.is_file():
            print(f"render.py: --config {args.config}: no such file", file=sys.stderr)
            return 2
        tla["config"] = f"import {json.dumps(str(config))}"
    try:
        files = json.loads(evaluate(HERE / "render.jsonnet", tla))
    except RuntimeError as e:
        # The first line is jsonnet's message (an assert of the mixin names
        # the _config key at fault); the stack trace that follows is noise.
        message = str(e).strip().splitlines()[0] if str(e).strip() else "jsonnet failed"
        culprit = f" (--config {args.config})" if args.config else ""
        print(f"render.py: {message}{culprit}", file=sys.stderr)
        return 2 if args.config else 1
    except FileNotFoundError as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not isinstance(text, str):
            text = json.dumps(text, indent=2, ensure_ascii=False) + "\n"
        path.write_text(text)
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
