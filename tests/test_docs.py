#!/usr/bin/env python3
"""Docs that cannot drift from the code.

usage: test_docs.py SOURCE_DIR PREFORKD_BIN

1. The keys of each section ([preforkd], [worker], [[listen]]) in docs/configuration.md,
   man/preforkd.toml.5.scd and config/example.toml are exactly the parser's. The parser's
   lists come from the parser itself: `preforkd --check` on a config with an unknown key in
   each section answers "<section>.bogus: unknown key; expected "a", "b" ... or "z"".
2. Where more than one of them states a key's default, they state the same one. A line of
   config/example.toml that sets a key to something else says "default <value>" in its comment.
3. Every relative link in README.md, docs/*.md and examples/**/README.md names a file that
   exists and, into a Markdown file, a heading that exists there.

Prints every mismatch, each naming the file (and line), and exits 1 if there is one.
"""
import os
import re
import subprocess
import sys
import tempfile

SECTIONS = ("preforkd", "worker", "listen")
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def parser_keys(preforkd):
    """The parser's own key list per section, from its unknown-key errors."""
    config = (
        "[preforkd]\nzz_not_a_key = 1\n"
        '[worker]\ncommand = ["/bin/true"]\nzz_not_a_key = 1\n'
        '[[listen]]\naddress = "127.0.0.1:1"\nzz_not_a_key = 1\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(config)
        f.flush()
        run = subprocess.run([preforkd, "--check", "--config", f.name], capture_output=True, text=True, timeout=60)
    text = run.stdout + run.stderr
    keys = {}
    for section, label in (("preforkd", "preforkd"), ("worker", "worker"), ("listen", r"listen\[0\]")):
        m = re.search(label + r"\.zz_not_a_key: unknown key; expected (.*)", text)
        if not m:
            sys.exit(f"{preforkd} --check did not list the [{section}] keys; it printed:\n{text}")
        keys[section] = set(re.findall(r'"([a-z_0-9]+)"', m.group(1)))
    return keys


def norm(value):
    """A default as written, without markup: `"30s"`, *"30s"* and "30s" are the same."""
    return value.strip().strip("`*").strip()


def split_list(cell, mark):
    """`"100ms"`, `"30s"` -> ['"100ms"', '"30s"'] (literals in mark quotes at the start)."""
    out = []
    rest = cell.strip()
    while rest.startswith(mark):
        end = rest.find(mark, 1)
        if end < 0:
            break
        out.append(rest[1:end])
        rest = rest[end + 1 :].lstrip()
        if not rest.startswith(","):
            break
        rest = rest[1:].lstrip()
    return out


def assign(keys, defaults):
    """Defaults for keys named together: one each, or one for all."""
    if len(defaults) == len(keys):
        return dict(zip(keys, defaults))
    if defaults:
        return {k: defaults[0] for k in keys}
    return {k: None for k in keys}


def configuration_md(path):
    """{section: {key: (default or None, line)}} from the tables of docs/configuration.md."""
    out = {s: {} for s in SECTIONS}
    section = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"#{2,4} `\[\[?(\w+)\]\]?`\s*$", line)
        if m:
            section = m.group(1) if m.group(1) in SECTIONS else None
            continue
        if line.startswith("#"):
            section = None
            continue
        if section is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        keys = split_list(cells[0], "`")
        for key, default in assign(keys, split_list(cells[1], "`") if len(cells) > 1 else []).items():
            out[section][key] = (default, n)
    return out


def man_page(path):
    """The same from preforkd.toml(5): "*key*, *key2* (default *value*)" at the start of a line."""
    out = {s: {} for s in SECTIONS}
    section = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"# \[\[?(\w+)\]\]?\s*$", line)
        if m:
            section = m.group(1) if m.group(1) in SECTIONS else None
            continue
        if line.startswith("# "):
            section = None
            continue
        if section is None or not line.startswith("*"):
            continue
        m = re.match(r"((?:\*[a-z_0-9]+\*(?:, )?)+)\s*\((.*)", line)
        if not m:
            continue
        keys = re.findall(r"\*([a-z_0-9]+)\*", m.group(1))
        d = re.match(r"defaults? (\*.*)", m.group(2))
        defaults = split_list(d.group(1), "*") if d else []
        for key, default in assign(keys, defaults).items():
            out[section][key] = (default, n)
    return out


def example_toml(path):
    """{section: {key: (value or None when commented out, line, comment)}}."""
    out = {s: {} for s in SECTIONS}
    section = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"\[\[?(\w+)\]\]?\s*(#.*)?$", line)
        if m:
            section = m.group(1) if m.group(1) in SECTIONS else None
            continue
        if section is None:
            continue
        m = re.match(r"(#\s*)?([a-z_0-9]+)\s*=\s*(.*)$", line)
        if not m:
            continue
        commented, key, rest = m.group(1), m.group(2), m.group(3)
        value, comment = rest, ""
        # The value ends at a '#' outside a string.
        in_string = False
        for i, c in enumerate(rest):
            if c == '"':
                in_string = not in_string
            elif c == "#" and not in_string:
                value, comment = rest[:i], rest[i + 1 :]
                break
        out[section][key] = (None if commented else value.strip(), n, comment.strip())
    return out


def check_keys(source, keys):
    conf_path = os.path.join(source, "docs/configuration.md")
    man_path = os.path.join(source, "man/preforkd.toml.5.scd")
    example_path = os.path.join(source, "config/example.toml")
    docs = {
        conf_path: configuration_md(conf_path),
        man_path: man_page(man_path),
        example_path: example_toml(example_path),
    }
    for path, found in docs.items():
        rel = os.path.relpath(path, source)
        for section in SECTIONS:
            for key in sorted(keys[section] - found[section].keys()):
                problem(rel, f"[{section}] lacks the key {key!r}, which the parser reads")
            for key in sorted(found[section].keys() - keys[section]):
                problem(f"{rel}:{found[section][key][1]}", f"[{section}] {key!r} is not a key the parser reads")
    conf, man, example = docs[conf_path], docs[man_path], docs[example_path]
    for section in SECTIONS:
        for key in sorted(keys[section]):
            a, b = conf[section].get(key), man[section].get(key)
            if a and b and a[0] is not None and b[0] is not None and norm(a[0]) != norm(b[0]):
                problem(
                    f"docs/configuration.md:{a[1]}",
                    f"[{section}] {key}: default {a[0]} here, {b[0]} in man/preforkd.toml.5.scd:{b[1]}",
                )
            e = example[section].get(key)
            stated = a if a and a[0] is not None else b if b and b[0] is not None else None
            if e and e[0] is not None and stated is not None and norm(e[0]) != norm(stated[0]):
                if f"default {norm(stated[0])}" not in e[2]:
                    problem(
                        f"config/example.toml:{e[1]}",
                        f"[{section}] {key} = {e[0]}, but the default is {stated[0]}; "
                        f'set the default or say "default {norm(stated[0])}" in the comment',
                    )


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        found, fence = set(), False
        for line in open(path, encoding="utf-8"):
            if line.startswith("```"):
                fence = not fence
            elif not fence and re.match(r"#{1,6} ", line):
                base = slug(re.sub(r"^#+ ", "", line))
                name, i = base, 0
                while name in found:
                    i += 1
                    name = f"{base}-{i}"
                found.add(name)
        cache[path] = found
    return cache[path]


def markdown_files(source):
    files = [os.path.join(source, "README.md")]
    for folder in ("docs", "examples"):
        for root, _, names in os.walk(os.path.join(source, folder)):
            for name in names:
                if name.endswith(".md") and (folder == "docs" or name == "README.md"):
                    files.append(os.path.join(root, name))
    return sorted(files)


def check_links(source):
    files = markdown_files(source)
    if len(files) < 3:
        problem(source, "found no docs/ or examples/ Markdown files")
    for path in files:
        rel = os.path.relpath(path, source)
        fence = False
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if line.startswith("```"):
                fence = not fence
                continue
            if fence:
                continue
            line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target):
                    continue  # https:, mailto:
                file_part, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                if not os.path.realpath(dest).startswith(os.path.realpath(source) + os.sep) and dest != path:
                    problem(f"{rel}:{n}", f"link {target} leaves the repository")
                    continue
                if not os.path.exists(dest):
                    problem(f"{rel}:{n}", f"link {target}: no such file {os.path.relpath(dest, source)}")
                    continue
                if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                    problem(f"{rel}:{n}", f"link {target}: no heading #{anchor} in {os.path.relpath(dest, source)}")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_docs.py SOURCE_DIR PREFORKD_BIN")
    source, preforkd = os.path.abspath(sys.argv[1]), sys.argv[2]
    keys = parser_keys(preforkd)
    check_keys(source, keys)
    check_links(source)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in the docs")
        return 1
    counts = ", ".join(f"[{s}] {len(keys[s])}" for s in SECTIONS)
    print(f"docs: every key of the parser ({counts}) documented, defaults agree, links resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
