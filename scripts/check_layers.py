#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the include graph against the layers of shared/DESIGN.md and
docs/architecture.md, reading only #include "..." lines:

  session  (src/session)              may include stream, io, pubsub, pure
  stream   (src/stream)               may include io, pure
  io       (src/io)      pubsub (src/pubsub)   siblings: each may include pure only
  pure     (src/util, src/proto)      may include pure only
  main.c                              may include session and pure
  tools/, bench/ (clients)            may include pure only

A file's layer is its folder (include/ringcast/<layer>/ or src/<layer>/). It also
fails when a header beside its sources (src/<layer>/x.h) is included from another
folder, when a header has no source (include/ringcast/L/m.h without src/L/m.c,
src/L/x.h without src/L/x.c unless it is L's x_internal.h), or when modules
include each other (a cycle of any length). Exit status 1 with one line per
violation. `--self-test` checks the checker on small trees with known faults."""
import os
import re
import sys
import tempfile

PURE = {"util", "proto"}
ALLOWED = {
    "util": PURE,
    "proto": PURE,
    "io": PURE | {"io"},
    "pubsub": PURE | {"pubsub"},
    "stream": PURE | {"io", "stream"},
    "session": PURE | {"io", "pubsub", "stream", "session"},
    "main": PURE | {"session"},
    "client": PURE | {"client"},
}
LAYERS = set(ALLOWED) - {"main", "client"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    parts = rel.split("/")
    if rel == "src/main.c":
        return "main"
    if parts[0] in ("tools", "bench"):
        return "client"
    if parts[0] == "src" and len(parts) > 2 and parts[1] in LAYERS:
        return parts[1]
    if parts[:2] == ["include", "ringcast"] and len(parts) > 3 and parts[2] in LAYERS:
        return parts[2]
    return None


def module_of(rel):
    """include/ringcast/L/m.h, src/L/m.c, src/L/m.h and src/L/m_internal.h are one
    module, L/m."""
    stem = os.path.splitext(rel)[0]
    if stem.endswith("_internal"):
        stem = stem[: -len("_internal")]
    if stem.startswith("include/ringcast/"):
        return stem[len("include/ringcast/"):]
    if stem.startswith("src/"):
        return stem[len("src/"):]
    return stem


def files(root):
    for top in ("src", "include", "tools", "bench"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, n), root)


def resolve(root, rel, inc):
    """The repository path an #include "inc" in rel names, or None (system or other)."""
    beside = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
    if os.path.exists(os.path.join(root, beside)):
        return beside
    public = os.path.join("include", inc)
    if os.path.exists(os.path.join(root, public)):
        return public
    return None


def check(root):
    errors = []
    graph = {}
    all_files = list(files(root))
    for rel in all_files:
        layer = layer_of(rel)
        if rel.startswith(("src/", "include/")) and layer is None:
            errors.append(f"{rel}: not in a layer folder ({', '.join(sorted(LAYERS))}) or src/main.c")
            continue
        # No header without its source.
        if rel.endswith(".h") and rel.startswith("include/ringcast/"):
            src = "src/" + rel[len("include/ringcast/"):-2] + ".c"
            if not os.path.exists(os.path.join(root, src)):
                errors.append(f"{rel}: header without its source {src}")
        if rel.endswith(".h") and rel.startswith("src/"):
            if not rel.endswith("_internal.h") and not os.path.exists(os.path.join(root, rel[:-2] + ".c")):
                errors.append(f"{rel}: header without its source {rel[:-2]}.c")
        text = open(os.path.join(root, rel), errors="replace").read()
        for inc in INCLUDE.findall(text):
            target = resolve(root, rel, inc)
            if target is None:
                continue
            tlayer = layer_of(target)
            if tlayer is None:
                continue
            if tlayer not in ALLOWED.get(layer, set()):
                errors.append(f"{rel}: includes {inc}, of layer {tlayer}, which {layer} may not use")
            if target.startswith("src/") and os.path.dirname(target) != os.path.dirname(rel):
                errors.append(f"{rel}: includes {inc}, a header private to {os.path.dirname(target)}")
            a, b = module_of(rel), module_of(target)
            if a != b and rel.startswith(("src/", "include/")):
                graph.setdefault(a, set()).add(b)
    errors += cycles(graph)
    return errors


def cycles(graph):
    """One line per include cycle between modules (found by depth-first search)."""
    out, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cyc = stack[stack.index(n):] + [n]
                out.append("include cycle: " + " -> ".join(cyc))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return out


def self_test():
    """Small trees, each with one known fault, and one clean tree."""
    scratch = tempfile.TemporaryDirectory(prefix="layers-")

    def tree(files_):
        d = tempfile.mkdtemp(dir=scratch.name)
        for rel, text in files_.items():
            os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        return d

    clean = {
        "include/ringcast/util/a.h": "", "src/util/a.c": '#include "ringcast/util/a.h"\n',
        "include/ringcast/io/b.h": '#include "ringcast/util/a.h"\n', "src/io/b.c": '#include "ringcast/io/b.h"\n',
        "src/io/b_internal.h": "", "src/io/c.c": '#include "b_internal.h"\n',
        "include/ringcast/session/s.h": "",
        "src/session/s.c": '#include "ringcast/io/b.h"\n#include "ringcast/session/s.h"\n',
        "src/main.c": '#include "ringcast/session/s.h"\n',
    }
    faults = {
        "upward include": {"src/util/a.c": '#include "ringcast/io/b.h"\n'},
        "siblings": {"include/ringcast/pubsub/p.h": "", "src/pubsub/p.c": '#include "ringcast/io/b.h"\n'},
        "private header from elsewhere": {"src/session/s.c": '#include "../io/b_internal.h"\n'},
        "header without source": {"include/ringcast/util/orphan.h": ""},
        "mutual include": {"include/ringcast/util/a.h": '#include "ringcast/util/d.h"\n',
                           "include/ringcast/util/d.h": '#include "ringcast/util/a.h"\n', "src/util/d.c": ""},
        "main reaching into io": {"src/main.c": '#include "ringcast/io/b.h"\n'},
        "client using io": {"tools/cli.c": '#include "ringcast/io/b.h"\n'},
    }
    failures = 0
    if check(tree(clean)):
        print("self-test: the clean tree was flagged:", check(tree(clean)))
        failures += 1
    for name, change in faults.items():
        errs = check(tree({**clean, **change}))
        if not errs:
            print(f"self-test: '{name}' was not caught")
            failures += 1
    print(f"self-test: {len(faults) + 1 - failures} of {len(faults) + 1} cases right")
    scratch.cleanup()
    return failures == 0


def main():
    if "--self-test" in sys.argv:
        return 0 if self_test() else 1
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = check(root)
    for e in errors:
        print("layers:", e)
    if errors:
        print(f"layers: {len(errors)} violation(s); the layers are drawn in docs/architecture.md")
        return 1
    print("layers: the include graph follows the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
