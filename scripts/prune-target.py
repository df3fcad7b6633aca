#!/usr/bin/env python3
"""Removes build outputs the current tree no longer uses from the shared cargo target folder.

The test command keeps one target folder outside the clone so that later runs build
incrementally. Cargo never deletes what it built for an older tree, though: every change
to a crate's dependencies or features leaves its old test binaries (600 MB each for ours)
and incremental caches behind, and the folder grew past 70 GB until the disk filled.

This asks cargo which files the test command's builds use (every artifact is reported,
fresh or not, and asking is fast once they are built) and deletes the rest of
`debug/deps`. Incremental caches (kept for workspace crates only) are named by a hash
cargo does not report, so for each crate it keeps as many of the newest as the builds
have units of that crate; deleting a live one by mistake only costs a slower rebuild.
Run it after the builds scripts/test.sh makes."""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter

# The builds scripts/test.sh makes; keep in step with it.
BUILDS = [
    ["cargo", "clippy", "--workspace", "--all-targets", "--message-format=json", "--", "-D", "warnings"],
    ["cargo", "test", "--workspace", "--no-run", "--message-format=json"],
    ["cargo", "build", "-p", "aichemy", "--message-format=json"],
]


def used_artifacts():
    """The `name-hash` stems and inodes of every file the builds report, and how many
    units each crate has."""
    stems, inodes, units = set(), set(), Counter()
    for cmd in BUILDS:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        for line in out.stdout.splitlines():
            msg = json.loads(line)
            if msg.get("reason") != "compiler-artifact":
                continue
            units[msg["target"]["name"].replace("-", "_")] += 1
            for path in msg["filenames"]:
                name = os.path.basename(path)
                # libfoo-0123abcd.rlib, foo-0123abcd, libfoo-0123abcd.so: the stem is foo-0123abcd.
                stems.add(name.removeprefix("lib").split(".")[0])
                # A binary is reported where cargo copies it (debug/aichemy); the deps file
                # is the same inode.
                inodes.add(os.stat(path).st_ino)
    return stems, inodes, units


def size(path):
    if os.path.isdir(path) and not os.path.islink(path):
        return sum(size(os.path.join(path, entry)) for entry in os.listdir(path))
    return os.lstat(path).st_size


def main():
    target = os.environ["CARGO_TARGET_DIR"]
    deps = os.path.join(target, "debug", "deps")
    incremental = os.path.join(target, "debug", "incremental")
    stems, inodes, units = used_artifacts()
    freed = 0
    for name in os.listdir(deps):
        path = os.path.join(deps, name)
        stem = name.removeprefix("lib").split(".")[0]
        if stem in stems or os.lstat(path).st_ino in inodes:
            continue
        freed += size(path)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    caches = {}
    for name in os.listdir(incremental) if os.path.isdir(incremental) else []:
        path = os.path.join(incremental, name)
        caches.setdefault(name.rsplit("-", 1)[0], []).append(path)
    for crate, paths in caches.items():
        paths.sort(key=os.path.getmtime, reverse=True)
        for path in paths[units[crate]:]:
            freed += size(path)
            shutil.rmtree(path)
    print(f"prune-target: freed {freed / 2**30:.1f} GiB of unused build outputs in {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
