#!/usr/bin/env python3
"""The module graph of src/ has no loops (style.md): among the crate's top-level modules, and
among the children of every module. Also: HTTP framework types (axum, hyper, tower-http) only in
`web/` and the binary's entry (`lib.rs`, `main.rs`).

An edge a -> b means a file of module a names an item of module b (`use crate::b::..`,
`crate::b::..` or `super::..` in code). Test code (`#[cfg(test)]` modules and `tests.rs` files)
is left out: tests may reach up. Prints each loop with the lines that make it; exit 1 if any.

    python3 scripts/check-module-graph.py [--dot]   # --dot: the top-level graph for graphviz
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
HTTP_CRATES = ("axum", "hyper", "hyper_util", "tower_http")
HTTP_ALLOWED = ("web",)  # top-level modules that may name HTTP framework types
ROOT_FILES = ("lib.rs", "main.rs")


def module_of(path: Path):
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_comments_and_tests(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*(\{|;)", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        if m.group(1) == ";":
            i = m.end()
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_use_tree(tree: str):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]"""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for k, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = k
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:k], tree[k + 1:]
                items, d, cur = [], 0, ""
                for c in inner:
                    if c == "," and d == 0:
                        items.append(cur)
                        cur = ""
                        continue
                    d += {"{": 1, "}": -1}.get(c, 0)
                    cur += c
                items.append(cur)
                result = []
                for item in items:
                    if item:
                        result += expand_use_tree(prefix + item + rest)
                return result
    return [re.sub(r"\bas\w+$", "", tree)]


def resolve(module, path: str, is_mod_file: bool):
    parts = [p for p in path.split("::") if p]
    if not parts:
        return None
    if parts[0] == "crate":
        return tuple(parts[1:])
    if parts[0] in ("super", "self"):
        base = list(module) if is_mod_file else list(module)
        # In `a/b.rs` (module a::b) `super` is a; in `a/mod.rs` (module a) `super` is a's parent.
        if parts[0] == "self":
            return tuple(base + parts[1:])
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        return tuple(base + parts)
    return None


def main():
    modules = {}
    for f in SRC.rglob("*.rs"):
        if f.name == "tests.rs":
            continue
        modules[module_of(f)] = f
    known = set(modules)
    edges = defaultdict(list)  # (from_module, to_module) -> [(file, line)]
    http_uses = []
    for module, f in modules.items():
        raw = f.read_text()
        text = strip_comments_and_tests(raw)
        is_mod = f.name in ("mod.rs", "lib.rs", "main.rs")
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for p in expand_use_tree(m.group(1)):
                paths.append((p, m.start()))
        for m in re.finditer(r"(?<![:\w])((?:crate|super|self)(?:::\w+)+)", text):
            paths.append((m.group(1), m.start()))
        for p, pos in paths:
            target = resolve(module, p, is_mod)
            if target is None:
                continue
            # The longest prefix that is a module: the rest names an item in it.
            while target and target not in known:
                target = target[:-1]
            if target and target != module:
                line = text.count("\n", 0, pos) + 1
                edges[(module, target)].append(f"{f.relative_to(SRC.parent)}:{line} {p}")
        top = module[0] if module else ""
        if f.name in ROOT_FILES and not module:
            continue
        if top not in HTTP_ALLOWED:
            for m in re.finditer(r"\b(" + "|".join(HTTP_CRATES) + r")::", text):
                http_uses.append(f"{f.relative_to(SRC.parent)}:{text.count(chr(10), 0, m.start()) + 1} {m.group(1)}")

    if "--dot" in sys.argv:
        print("digraph modules {")
        seen = set()
        for (a, b) in edges:
            if a and b and a[0] != b[0] and (a[0], b[0]) not in seen:
                seen.add((a[0], b[0]))
                print(f'  "{a[0]}" -> "{b[0]}";')
        print("}")
        return 0

    problems = 0
    # Every level: the children of `parent` (the crate itself is the parent of the top level).
    parents = {m[:-1] for m in known if m} | {()}
    for parent in sorted(parents):
        n = len(parent)
        graph = defaultdict(set)
        why = defaultdict(list)
        for (a, b), where in edges.items():
            if len(a) > n and len(b) > n and a[:n] == parent and b[:n] == parent and a[n] != b[n]:
                graph[a[n]].add(b[n])
                why[(a[n], b[n])] += where
        for component in strongly_connected(graph):
            problems += 1
            name = "::".join(parent) or "crate"
            print(f"loop among the modules of {name}: {', '.join(component)} import each other")
            for a in component:
                for b in sorted(graph[a] & set(component)):
                    print(f"    {a} -> {b}: {why[(a, b)][0]}")
    for use in http_uses:
        problems += 1
        print(f"HTTP framework type outside web/: {use}")
    if problems:
        print(f"{problems} problem(s) in the module graph", file=sys.stderr)
        return 1
    print(f"module graph: {len(known)} modules, no loops, HTTP types only in web/")
    return 0


def strongly_connected(graph):
    """The components of more than one node (Tarjan): each is a loop."""
    index, low, stack, on, components = {}, {}, [], set(), []
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return components


if __name__ == "__main__":
    sys.exit(main())
