#!/usr/bin/env python3
"""Every relative link in the repository's Markdown resolves inside it.

    python3 scripts/check-links.py        (scripts/check-standalone.sh runs it)

For each tracked *.md file, each [text](target) whose target is not a URL:
the file must exist inside the repository, and a #fragment must name a
heading of the target file (GitHub's anchor rules). Exit 1 with one line
per broken link.
"""

import os
import re
import subprocess
import sys

LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def anchors(path, cache={}):
    if path not in cache:
        found = set()
        counts = {}
        in_fence = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if FENCE.match(line):
                    in_fence = not in_fence
                    continue
                if in_fence:
                    continue
                m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
                if not m:
                    continue
                text = re.sub(r"`([^`]*)`", r"\1", m.group(1))
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
                slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
                n = counts.get(slug, 0)
                counts[slug] = n + 1
                found.add(slug if n == 0 else f"{slug}-{n}")
        for m in re.finditer(r'<a (?:name|id)="([^"]+)"', open(path, encoding="utf-8").read()):
            found.add(m.group(1))
        cache[path] = found
    return cache[path]


def main():
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=True).stdout.strip()
    files = subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True,
                           check=True, cwd=root).stdout.split()
    errors = []
    for rel in files:
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        in_fence = False
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        for no, line in enumerate(lines, 1):
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("<"):
                    continue
                file_part, _, fragment = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                if os.path.commonpath([dest, root]) != root:
                    errors.append(f"{rel}:{no}: {target}: leaves the repository")
                    continue
                if not os.path.exists(dest):
                    errors.append(f"{rel}:{no}: {target}: no such file")
                    continue
                if fragment and dest.endswith(".md") and fragment not in anchors(dest):
                    errors.append(f"{rel}:{no}: {target}: no heading #{fragment} in {os.path.relpath(dest, root)}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
