#!/usr/bin/env python3
"""Render the rules, the PrometheusRule and the dashboards from the mixin.

    mixin/render.py --out DIR            write them under DIR (`make mixin`: --out .)
    mixin/render.py --config FILE --out DIR
                                         with _config overridden by the object in FILE
                                         (a jsonnet file, e.g. mixin/tests/custom-config.libsonnet)
    mixin/render.py --mixin FILE --out DIR
                                         render the mixin FILE evaluates to: the
                                         shipped one with your own changes, e.g.
                                         (import 'mixin/mixin.libsonnet') + { prometheusAlerts+:: ... }

--out has no default: a render left without it must not overwrite the
committed files. Paths are relative to the current directory; the directory
holding mixin/ is on the jsonnet path, so FILE may import
'mixin/mixin.libsonnet' from anywhere.

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
    """JSON text of a jsonnet file evaluated with top-level code arguments,
    the repository root (the directory holding mixin/) on the jsonnet path."""
    try:
        import _gojsonnet
    except ImportError:
        _gojsonnet = None
    if _gojsonnet is not None:
        return _gojsonnet.evaluate_file(str(path), jpathdir=[str(ROOT)], tla_codes=tla)
    jrsonnet = shutil.which("jrsonnet") or shutil.which(os.path.expanduser("~/.cargo/bin/jrsonnet"))
    if jrsonnet is None:
        raise FileNotFoundError(
            "no jsonnet implementation: python3 -m pip install gojsonnet, or "
            "cargo install --locked jrsonnet (scripts/install-deps.sh does)")
    cmd = [jrsonnet, "-J", str(ROOT)]
    for name, code in tla.items():
        cmd += ["--tla-code", f"{name}={code}"]
    run = subprocess.run(cmd + [str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip())
    return run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", required=True,
        help="output directory (required; `make mixin` passes the repository root)")
    parser.add_argument("--config", help="jsonnet file whose object overrides _config")
    parser.add_argument(
        "--mixin", help="jsonnet file evaluating to the mixin to render (default: mixin/mixin.libsonnet)")
    args = parser.parse_args()
    tla = {}
    for flag, name in (("--config", "config"), ("--mixin", "mixin")):
        given = getattr(args, name)
        if given is None:
            continue
        path = pathlib.Path(given).resolve()
        if not path.is_file():
            print(f"render.py: {flag} {given}: no such file", file=sys.stderr)
            return 2
        tla[name] = f"import {json.dumps(str(path))}"
    try:
        files = json.loads(evaluate(HERE / "render.jsonnet", tla))
    except RuntimeError as e:
        # The first line is jsonnet's message (an assert of the mixin names
        # the _config key at fault); the stack trace that follows is noise.
        message = str(e).strip().splitlines()[0] if str(e).strip() else "jsonnet failed"
        given = [f"{flag} {value}" for flag, value in (("--config", args.config), ("--mixin", args.mixin)) if value]
        culprit = f" ({', '.join(given)})" if given else ""
        print(f"render.py: {message}{culprit}", file=sys.stderr)
        return 2 if given else 1
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
