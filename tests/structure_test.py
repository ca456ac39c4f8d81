#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The source tree's structure, checked rather than hoped (docs/architecture.md,
"Layout"):

- layering: lib/meson.build lists the modules in order; a module may include
  the public header of a module listed before it, never of one after it
  (nor of an app); an app includes only libraries' headers and its own files,
  never another app's;
- size: no .c or .h file of lib/ or app/ over 1000 lines; no function of
  lib/ over 150 lines (a function is counted from the line of its name to
  its closing brace).

Prints one PASS or FAIL line per rule ("structure/<rule>"), the offenders
in the FAIL line; exits non-zero when any rule fails. Usage:
    tests/structure_test.py [--root DIR]
"""
import argparse
import os
import re
import sys

MAX_FILE_LINES = 1000
MAX_FUNCTION_LINES = 150

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def lib_order(root):
    """Module names in lib/meson.build's order."""
    with open(os.path.join(root, "lib", "meson.build")) as f:
        text = f.read()
    m = re.search(r"foreach\s+m\s*:\s*\[([^\]]*)\]", text)
    if m is None:
        raise SystemExit("FAIL: structure/layering: no module list in lib/meson.build")
    return re.findall(r"'([a-z0-9_]+)'", m.group(1))


def sources(root, top):
    for dirpath, _, files in os.walk(os.path.join(root, top)):
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                yield os.path.join(dirpath, name)


def header_owners(root, modules, apps):
    """Header file name -> ('lib', module) or ('app', app) that holds it."""
    owners = {}
    for m in modules:
        for path in sources(root, os.path.join("lib", m)):
            if path.endswith(".h"):
                owners.setdefault(os.path.basename(path), []).append(("lib", m))
    for a in apps:
        for path in sources(root, os.path.join("app", a)):
            if path.endswith(".h"):
                owners.setdefault(os.path.basename(path), []).append(("app", a))
    return owners


def check_layering(root):
    modules = lib_order(root)
    rank = {m: i for i, m in enumerate(modules)}
    apps = sorted(d for d in os.listdir(os.path.join(root, "app"))
                  if os.path.isdir(os.path.join(root, "app", d)))
    owners = header_owners(root, modules, apps)
    bad = []
    for kind, names in (("lib", modules), ("app", apps)):
        for name in names:
            for path in sources(root, os.path.join(kind, name)):
                with open(path, errors="replace") as f:
                    text = f.read()
                rel = os.path.relpath(path, root)
                for inc in INCLUDE.findall(text):
                    base = os.path.basename(inc)
                    for okind, owner in owners.get(base, ()):
                        if okind == kind and owner == name:
                            continue  # its own header
                        if okind == "app":
                            bad.append("%s includes %s of app/%s" % (rel, inc, owner))
                        elif kind == "lib" and rank[owner] > rank[name]:
                            bad.append("%s (module %s) includes %s of module %s, listed after "
                                       "it in lib/meson.build" % (rel, name, inc, owner))
    # an app compiles only its own sources: app/*/meson.build names no other app's files
    for a in apps:
        mb = os.path.join(root, "app", a, "meson.build")
        if not os.path.exists(mb):
            continue
        with open(mb) as f:
            text = f.read()
        for other in apps:
            if other != a and re.search(r"['/]\.\./%s/|'%s/" % (re.escape(other),
                                                                re.escape(other)), text):
                bad.append("app/%s/meson.build compiles files of app/%s" % (a, other))
    return bad


FUNC_START = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    """(name, first line, last line) of each top-level function definition."""
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
    out = []
    depth = 0
    i = 0
    in_comment = False
    pending = None  # (name, line) of a name at column 0 followed by '('
    while i < len(lines):
        line = lines[i]
        # strip comments and strings well enough for brace counting
        code = ""
        j = 0
        while j < len(line):
            if in_comment:
                k = line.find("*/", j)
                if k < 0:
                    j = len(line)
                    break
                in_comment = False
                j = k + 2
                continue
            c = line[j]
            if line.startswith("/*", j):
                in_comment = True
                j += 2
                continue
            if line.startswith("//", j):
                break
            if c in "\"'":
                q = c
                j += 1
                while j < len(line) and line[j] != q:
                    j += 2 if line[j] == "\\" else 1
                j += 1
                continue
            code += c
            j += 1
        if depth == 0:
            m = FUNC_START.match(line)
            if m and not line.startswith(("if", "for", "while", "switch", "return")):
                pending = (m.group(1), i + 1)
            elif code.strip().endswith(";"):
                pending = None
        for c in code:
            if c == "{":
                if depth == 0 and pending is not None:
                    start = pending
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0 and pending is not None:
                    out.append((start[0], start[1], i + 1))
                    pending = None
        i += 1
    return out


def check_sizes(root):
    bad_files, bad_funcs = [], []
    for top in ("lib", "app"):
        for path in sources(root, top):
            rel = os.path.relpath(path, root)
            with open(path, errors="replace") as f:
                n = f.read().count("\n")
            if n > MAX_FILE_LINES:
                bad_files.append("%s (%d lines)" % (rel, n))
            if top == "lib" and path.endswith(".c"):
                for name, a, b in functions(path):
                    if b - a + 1 > MAX_FUNCTION_LINES:
                        bad_funcs.append("%s:%d %s (%d lines)" % (rel, a, name, b - a + 1))
    return bad_files, bad_funcs


def report(name, bad):
    if bad:
        print("FAIL: structure/%s: %s" % (name, "; ".join(bad)))
        return 1
    print("PASS: structure/%s" % name)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    a = ap.parse_args()
    failed = report("layering", check_layering(a.root))
    files, funcs = check_sizes(a.root)
    failed += report("file_size", files)
    failed += report("function_size", funcs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
