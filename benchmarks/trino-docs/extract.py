#!/usr/bin/env python3
"""Extract Trino's documented functions and documented SQL examples as JSON.

Reads Trino's Sphinx/MyST documentation (the ``docs/src/main/sphinx`` tree of
trinodb/trino or a fork) and writes three files:

``functions.json``
    ``{page: [{"name", "signature", "returns", ...}]}`` -- one entry per
    ``:::{function}``, ``:::{js:function}`` or ``:::{data}`` directive (any
    number of colons).
``examples.json``
    ``{page: [{"sql", "expected", "kind", "raw", ...}]}`` -- one entry per SQL
    statement found in a code block, plus examples given in "Example | Result"
    operator tables and in prose ("`f(x)` returns `y`").  ``expected`` is
    ``null`` when the docs show no result for the statement.
``stats.json``
    Source (repository, commit, date), per-page counts, and everything the
    parser saw but did not turn into an example (non-SQL code blocks, syntax
    synopses, result blocks it could not pair), so nothing is dropped silently.

Pages read: every ``functions/*.md`` plus ``language/types.md`` and
``sql/select.md``.  Page keys are paths relative to the sphinx root without
``.md`` (``functions/math``, ``language/types``, ``sql/select``).

Usage (either source form)::

    # from a git directory without work tree (e.g. a bare mirror), at a ref
    python3 extract.py --git-dir /path/to/trino.git --ref HEAD

    # from a checked-out folder: the sphinx root (holding functions/,
    # language/, sql/) -- or any folder of .md files, whose stems become keys
    python3 extract.py --docs-dir /path/to/trino/docs/src/main/sphinx

    # options: --out DIR (default: the folder holding this script)
    #          --repo NAME (recorded in stats.json; default martint/trino)
    #          --update-readme (rewrite the generated table in README.md)

Standard library only; Python 3.11.

Example record fields
---------------------
``id``          ``page:line`` of the statement (``#n`` appended if a line
                holds more than one example)
``sql``         the statement exactly as written (dedented, internal comments
                kept, trailing ``;`` and the result comment removed)
``expected``    - a string: the documented result text (comment, prose,
                  error message), surrounding whitespace stripped; several
                  result comment lines are joined with ``\\n``
                - a list of rows (lists of cell strings): psql-style or
                  markdown result tables (markdown escapes and backticks
                  removed from cells)
                - ``null``: no documented result
``kind``        how the result was documented:
                ``inline_comment``    ``SELECT ...; -- result`` on one line
                ``following_comment`` result comment(s) on the next line(s)
                ``arrow_comment``     ``--> result`` (either position)
                ``psql_table``        ``-----+-----`` table (same or next block)
                ``markdown_table``    ``| a | b |`` table right after the block
                ``error_block``       next block is ``Query failed: ...``
                ``operator_table``    row of an ``Example | Result`` table
                ``prose``             "`expr` returns `value`" in running text
                ``prose_block``       sentence next to a one-query block naming
                                      its result ("The above query returns
                                      `true`", "...fail with the error `X`:")
                ``none``              no result documented
``raw``         the result exactly as in the markdown (comment lines with their
                ``--`` markers, the whole table, the sentence); ``null`` if none
``columns``     column names for table results
``row_count``   the ``(N rows)`` footer of psql tables, if present
``truncated``   the table shows ``...`` in place of rows
``error``       the documented result is an error
``function``    name of the enclosing function directive, if any
``section``     nearest heading
``line``        1-based line of the statement in the page
``block_lang``  info string of the code block (``sql``, ``text``, ``""``)
``tables``      heuristic: relation names the query reads (FROM/JOIN/INTO);
                empty means it needs no catalog data
``nondeterministic`` heuristic: calls now()/rand()/random()/uuid()/shuffle()/
                current_timezone()/ai_*() or uses current_*/localtime*
``session_zone`` heuristic: an IANA zone the documented result shows but the
                SQL does not name (the session zone the docs assumed)
``excluded_from_targets`` reason, or null (the ``ai`` page needs an LLM)
``leading_comment``, ``header``, ``result_intro`` comment above the
                statement, text line above result comments, lead-in sentence
                between a query block and its result block
``trailing_text`` text after the statement that is neither a result comment
                nor a table (kept, not interpreted)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys

SPHINX_PREFIX = "docs/src/main/sphinx"
EXTRA_PAGES = ["language/types.md", "sql/select.md"]
EXCLUDED_FROM_TARGETS = {"functions/ai": "needs an external LLM service"}
INDEX_PAGES = {"functions/list", "functions/list-by-topic"}


def excluded(page: str) -> str | None:
    """Reason a page is excluded from test targets (keys with or without the
    ``functions/`` prefix, so a plain folder of pages works too)."""
    return EXCLUDED_FROM_TARGETS.get(page) or EXCLUDED_FROM_TARGETS.get("functions/" + page)

# --------------------------------------------------------------------------
# Reading the pages
# --------------------------------------------------------------------------


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", git_dir, *args], check=True, capture_output=True, text=True
    ).stdout


def load_from_git(git_dir: str, ref: str) -> tuple[dict[str, str], dict]:
    commit = git(git_dir, "rev-parse", ref + "^{commit}").strip()
    date = git(git_dir, "show", "-s", "--format=%cI", commit).strip()
    names = git(
        git_dir, "ls-tree", "-r", "--name-only", commit, SPHINX_PREFIX + "/functions"
    ).split()
    rels = sorted(n[len(SPHINX_PREFIX) + 1 :] for n in names if n.endswith(".md"))
    rels += EXTRA_PAGES
    pages = {}
    for rel in rels:
        text = git(git_dir, "show", f"{commit}:{SPHINX_PREFIX}/{rel}")
        pages[rel[:-3]] = text
    return pages, {"commit": commit, "commit_date": date, "ref": ref}


def load_from_dir(root: str) -> tuple[dict[str, str], dict]:
    pages = {}
    if os.path.isdir(os.path.join(root, "functions")):
        rels = sorted(
            "functions/" + f
            for f in os.listdir(os.path.join(root, "functions"))
            if f.endswith(".md")
        )
        rels += [r for r in EXTRA_PAGES if os.path.exists(os.path.join(root, r))]
    else:
        rels = sorted(f for f in os.listdir(root) if f.endswith(".md"))
    for rel in rels:
        with open(os.path.join(root, rel), encoding="utf-8") as fh:
            pages[rel[:-3]] = fh.read()
    return pages, {"commit": None, "commit_date": None, "ref": None, "dir": root}


# --------------------------------------------------------------------------
# Markdown structure: code blocks, directives, headings, paragraphs, tables
# --------------------------------------------------------------------------

FENCE_OPEN = re.compile(r"^(?P<lead>\s*(?:[-*+]\s+|:\s+)?)(?P<ticks>`{3,}|~{3,})(?P<info>[^`]*)$")
DIRECTIVE_OPEN = re.compile(r"^\s*(?P<colons>:{3,})\{(?P<name>[^}]+)\}\s*(?P<arg>.*?)\s*$")
DIRECTIVE_CLOSE = re.compile(r"^\s*(?P<colons>:{3,})\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
FUNC_DIRECTIVES = {"function", "js:function", "data"}


class Block:
    def __init__(self, start, end, lang, lines, first_line, func, section):
        self.start = start  # 0-based index of the opening fence line
        self.end = end  # 0-based index of the closing fence line
        self.lang = lang
        self.lines = lines  # content lines, dedented
        self.first_line = first_line  # 1-based line number of lines[0]
        self.func = func
        self.section = section


def parse_markdown(text: str):
    """Return (lines, blocks, directives, context) for a page.

    context[i] = (enclosing function name or None, heading) for line i; code
    block lines are marked in ``in_code``.
    """
    lines = text.split("\n")
    blocks: list[Block] = []
    directives = []
    stack: list[tuple[int, str, str | None]] = []  # (colons, name, funcname)
    section = None
    context = []
    in_code = [False] * len(lines)
    i = 0
    n = len(lines)

    def current_func():
        for colons, name, fname in reversed(stack):
            if fname is not None:
                return fname
        return None

    while i < n:
        line = lines[i]
        m = FENCE_OPEN.match(line)
        if m:
            ticks = m.group("ticks")
            col = len(m.group("lead"))
            info = m.group("info").strip()
            j = i + 1
            close = re.compile(r"^\s*" + re.escape(ticks[0]) + "{%d,}\\s*$" % len(ticks))
            while j < n and not close.match(lines[j]):
                j += 1
            body = []
            for raw in lines[i + 1 : j]:
                k = 0
                while k < col and k < len(raw) and raw[k] == " ":
                    k += 1
                body.append(raw[k:])
            blocks.append(Block(i, min(j, n - 1), info, body, i + 2, current_func(), section))
            for k in range(i, min(j, n - 1) + 1):
                in_code[k] = True
                context.append((current_func(), section))
            i = j + 1
            continue
        m = DIRECTIVE_OPEN.match(line)
        if m:
            name = m.group("name").strip()
            fname = None
            if name in FUNC_DIRECTIVES:
                sig = m.group("arg")
                opts = {}
                k = i + 1
                while k < n and re.match(r"^\s*:[\w-]+:", lines[k]):
                    om = re.match(r"^\s*:([\w-]+):\s*(.*)$", lines[k])
                    opts[om.group(1)] = om.group(2).strip()
                    k += 1
                d = make_function(name, sig, opts, i + 1)
                directives.append(d)
                fname = d["name"]
            stack.append((len(m.group("colons")), name, fname))
            context.append((current_func(), section))
            i += 1
            continue
        m = DIRECTIVE_CLOSE.match(line)
        if m and stack:
            c = len(m.group("colons"))
            while stack and stack[-1][0] <= c:
                top = stack.pop()
                if top[0] == c:
                    break
            context.append((current_func(), section))
            i += 1
            continue
        m = HEADING.match(line)
        if m and not stack:
            section = m.group(2)
        elif m:
            section = m.group(2)
        context.append((current_func(), section))
        i += 1
    return lines, blocks, directives, context, in_code


def split_top_level_arrow(sig: str) -> tuple[str, str | None]:
    """Split ``name(args) -> type`` at the last top-level arrow."""
    depth = 0
    last = None
    i = 0
    while i < len(sig):
        ch = sig[i]
        if ch in "([<":
            depth += 1
        elif ch in ")]>" and not (ch == ">" and sig[i - 1 : i] in ("-", "=")):
            depth -= 1
        if depth == 0:
            if sig.startswith(" -> ", i) or sig.startswith(" → ", i):
                last = i
        i += 1
    if last is None:
        return sig.strip(), None
    head = sig[:last].strip()
    rest = sig[last:].strip()
    rest = rest[2:] if rest.startswith("->") else rest[1:]
    return head, rest.strip() or None


def make_function(directive: str, sig: str, opts: dict, line: int) -> dict:
    head, returns = split_top_level_arrow(sig)
    m = re.match(r"^\s*([^\s(]+)\s*(\((.*)\))?\s*$", head, re.S)
    if m:
        name = m.group(1)
        args = m.group(3).strip() if m.group(3) is not None else None
    else:
        name = head.split("(")[0].strip()
        args = head[len(name) :].strip()[1:-1] if "(" in head else None
    base = re.split(r"::|\.", name)[-1]
    return {
        "name": name,
        "base_name": base,
        "signature": sig.strip(),
        "returns": returns,
        "args": args,
        "directive": directive,
        "noindex": any(k in opts for k in ("noindex", "no-index")),
        "line": line,
    }


def markdown_table_at(lines: list[str], i: int, in_code: list[bool]):
    """Parse a pipe table starting at line i; return (header, rows, end) or None."""
    n = len(lines)
    if i >= n or in_code[i] or not lines[i].lstrip().startswith("|"):
        return None
    if i + 1 >= n or not re.match(r"^\s*\|?\s*:?-{2,}", lines[i + 1]):
        return None
    j = i
    tbl = []
    while j < n and not in_code[j] and lines[j].lstrip().startswith("|"):
        tbl.append(lines[j])
        j += 1
    header = split_md_row(tbl[0])
    rows = [split_md_row(r) for r in tbl[2:]]
    return header, rows, j, "\n".join(tbl)


def split_md_row(row: str) -> list[str]:
    s = row.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells = re.split(r"(?<!\\)\|", s)
    return [c.strip() for c in cells]


def md_unescape(cell: str) -> str:
    c = cell.strip()
    if len(c) >= 2 and c.startswith("`") and c.endswith("`") and c.count("`") == 2:
        return c[1:-1]
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>])", r"\1", c)


# --------------------------------------------------------------------------
# SQL statements inside a code block
# --------------------------------------------------------------------------

KEYWORD_START = re.compile(
    r"^\s*(SELECT|WITH|VALUES|TABLE|SHOW|EXPLAIN|CREATE|INSERT|UPDATE|DELETE|MERGE|"
    r"DROP|ALTER|PREPARE|EXECUTE|DESCRIBE|USE|SET|RESET|CALL|GRANT|REVOKE|COMMENT|"
    r"ANALYZE|START|COMMIT|ROLLBACK|DEALLOCATE|REFRESH|TRUNCATE)\b",
    re.I,
)
CONTINUATION_END = re.compile(
    r"\b(UNION|ALL|DISTINCT|INTERSECT|EXCEPT|CORRESPONDING|AS|FROM|JOIN|ON|AND|OR|"
    r"WHERE|BY|INTO|THEN|ELSE|WHEN|SELECT|WITH)\s*$|[(,]\s*$",
    re.I,
)
COMMENT_LINE = re.compile(r"^\s*--(?![-+ ]*$)")  # a "-----+---" table rule is no comment


class ScanState:
    def __init__(self):
        self.in_str = None
        self.in_block_comment = False
        self.depth = 0


def scan_line(text: str, st: ScanState):
    """Scan one line of SQL; return (semicolon_index, comment_index)."""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if st.in_block_comment:
            if text.startswith("*/", i):
                st.in_block_comment = False
                i += 2
                continue
            i += 1
            continue
        if st.in_str:
            if ch == st.in_str:
                if i + 1 < n and text[i + 1] == st.in_str:
                    i += 2
                    continue
                st.in_str = None
            i += 1
            continue
        if ch in "'\"":
            st.in_str = ch
        elif text.startswith("--", i):
            return None, i
        elif text.startswith("/*", i):
            st.in_block_comment = True
            i += 2
            continue
        elif ch in "([":
            st.depth += 1
        elif ch in ")]":
            st.depth -= 1
        elif ch == ";":
            return i, None
        i += 1
    return None, None


class Stmt:
    def __init__(self, line_no):
        self.line = line_no
        self.code: list[str] = []
        self.region: list[tuple[int, str, bool]] = []  # (line, text, same_line)
        self.state = ScanState()
        self.ended = None
        self.leading: list[str] = []  # comment lines introducing the statement


def is_synopsis(sql: str) -> bool:
    """True for grammar synopses such as ``SELECT [ ALL | DISTINCT ] ...``."""
    code = strip_strings_and_comments(sql)
    if "{" in code or "[," in code or "..." in code:
        return True
    if re.search(r"(?<!\|)\|(?!\|)", code):
        return True
    if re.search(r"<[a-z_]+>", code):
        return True
    return False


def strip_strings_and_comments(sql: str) -> str:
    out = []
    st = ScanState()
    for line in sql.split("\n"):
        i = 0
        buf = []
        while i < len(line):
            ch = line[i]
            if st.in_str:
                if ch == st.in_str:
                    if i + 1 < len(line) and line[i + 1] == st.in_str:
                        i += 2
                        continue
                    st.in_str = None
                    buf.append("''")
                i += 1
                continue
            if ch in "'\"":
                st.in_str = ch
                i += 1
                continue
            if line.startswith("--", i):
                break
            buf.append(ch)
            i += 1
        out.append("".join(buf))
    return "\n".join(out)


def split_statements(lines: list[str], first_line: int):
    """Split a code block into statements with their trailing result regions.

    Returns (statements, prelude) where prelude holds the non-SQL lines seen
    before the first statement.
    """
    stmts: list[Stmt] = []
    prelude: list[tuple[int, str]] = []
    cur: Stmt | None = None
    last: Stmt | None = None
    n = len(lines)

    def result_follows(j: int) -> bool:
        """From line j on, is there only a comment run then end/blank/new stmt?"""
        while j < n and COMMENT_LINE.match(lines[j]):
            j += 1
        return j >= n or not lines[j].strip() or bool(KEYWORD_START.match(lines[j]))

    i = 0
    text_override = None
    while i < n:
        line = lines[i] if text_override is None else text_override
        same_line = text_override is not None
        text_override = None
        lineno = first_line + i
        if cur is None:
            if not line.strip():
                if last is not None:
                    last.region.append((lineno, line, False))
                i += 1
                continue
            if KEYWORD_START.match(line):
                cur = Stmt(lineno)
                stmts.append(cur)
                if last is not None:
                    # A comment run directly above this statement, separated
                    # by a blank line from the previous statement's result,
                    # introduces this statement; it is not a result.
                    k = len(last.region)
                    while (
                        k > 0
                        and not last.region[k - 1][2]
                        and COMMENT_LINE.match(last.region[k - 1][1])
                        and last.region[k - 1][0] == lineno - (len(last.region) - k) - 1
                    ):
                        k -= 1
                    if k < len(last.region) and k > 0 and not last.region[k - 1][1].strip():
                        cur.leading = [r[1] for r in last.region[k:]]
                        del last.region[k:]
                last = None
            else:
                if last is not None:
                    last.region.append((lineno, line, same_line))
                else:
                    prelude.append((lineno, line))
                i += 1
                continue
        # inside a statement
        if not line.strip() and cur.state.depth == 0 and cur.state.in_str is None:
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            prev_code = next((c for c in reversed(cur.code) if c.strip()), "")
            prev_code = strip_strings_and_comments(prev_code)
            if (
                j < n
                and KEYWORD_START.match(lines[j])
                and not CONTINUATION_END.search(prev_code)
            ):
                cur.ended = "blank"
                last, cur = cur, None
                i += 1
                continue
        semi, com = scan_line(line, cur.state)
        if semi is not None:
            cur.code.append(line[:semi])
            cur.ended = ";"
            last, cur = cur, None
            rest = line[semi + 1 :]
            if rest.strip():
                if KEYWORD_START.match(rest):
                    text_override = rest
                    continue
                last.region.append((lineno, rest, True))
            i += 1
            continue
        if (
            com is not None
            and cur.state.depth == 0
            and cur.state.in_str is None
            and not cur.state.in_block_comment
        ):
            code_part = line[:com]
            if result_follows(i + 1):
                if code_part.strip():
                    cur.code.append(code_part)
                    cur.ended = "comment"
                    last, cur = cur, None
                    last.region.append((lineno, line[com:], True))
                else:
                    cur.ended = "comment"
                    last, cur = cur, None
                    last.region.append((lineno, line, False))
                i += 1
                continue
        cur.code.append(line)
        i += 1
    if cur is not None:
        cur.ended = "eob"
    return stmts, prelude


def dedent(text_lines: list[str]) -> str:
    ls = list(text_lines)
    while ls and not ls[0].strip():
        ls.pop(0)
    while ls and not ls[-1].strip():
        ls.pop()
    indents = [len(l) - len(l.lstrip(" ")) for l in ls[1:] if l.strip()]
    first_indent = len(ls[0]) - len(ls[0].lstrip(" ")) if ls else 0
    common = min([first_indent] + indents) if ls else 0
    out = [l[common:] if len(l) >= common else l.lstrip(" ") for l in ls]
    if out:
        out[0] = out[0].lstrip(" ")
    return "\n".join(l.rstrip() for l in out)


# --------------------------------------------------------------------------
# Result parsing
# --------------------------------------------------------------------------

DASH_LINE = re.compile(r"^\s*-{3,}[-+ ]*$")
ROWS_FOOTER = re.compile(r"^\s*\((\d+) rows?\)\s*$")
ERROR_TEXT = re.compile(r"^\s*(ERROR\b|failure\b|Query failed\b)", re.I)


def parse_psql_table(text_lines: list[str]):
    tl = [l for l in text_lines if l.strip()]
    k = next(i for i, l in enumerate(tl) if DASH_LINE.match(l))
    header = tl[:k]
    body = tl[k + 1 :]
    row_count = None
    truncated = False
    rows = []
    for l in body:
        m = ROWS_FOOTER.match(l)
        if m:
            row_count = int(m.group(1))
            continue
        if l.strip() == "...":
            truncated = True
            continue
        rows.append([c.strip() for c in l.split("|")])
    columns = [c.strip() for c in header[-1].split("|")] if header else []
    return columns, rows, row_count, truncated


def comment_value(text: str) -> tuple[str, bool]:
    m = re.match(r"^\s*--(>)?(.*)$", text)
    return m.group(2).strip(), bool(m.group(1))


def interpret_region(region: list[tuple[int, str, bool]]):
    """Interpret the text after a statement inside its block."""
    items = [r for r in region if r[1].strip()]
    if not items:
        return None
    comments = [r for r in items if COMMENT_LINE.match(r[1])]
    others = [r for r in items if not COMMENT_LINE.match(r[1])]
    raw = "\n".join(r[1].rstrip() for r in region).strip("\n")
    if any(DASH_LINE.match(r[1]) for r in others):
        cols, rows, rc, trunc = parse_psql_table([r[1] for r in others])
        res = {
            "kind": "psql_table",
            "expected": rows,
            "columns": cols,
            "row_count": rc,
            "truncated": trunc,
            "raw": raw,
        }
        if comments:
            res["trailing_text"] = "\n".join(c[1] for c in comments)
        return res
    if comments and all(o[0] < comments[0][0] for o in others):
        vals = [comment_value(c[1]) for c in comments]
        arrow = any(a for _, a in vals)
        inline = comments[0][2]
        kind = "arrow_comment" if arrow else ("inline_comment" if inline else "following_comment")
        expected = "\n".join(v for v, _ in vals)
        res = {"kind": kind, "expected": expected, "raw": raw}
        if others:
            res["header"] = "\n".join(o[1].strip() for o in others)
        if ERROR_TEXT.match(expected):
            res["error"] = True
        return res
    if others and ERROR_TEXT.match(others[0][1]) and not comments:
        return {
            "kind": "error_block",
            "expected": "\n".join(o[1].strip() for o in others),
            "error": True,
            "raw": raw,
        }
    return {"kind": None, "trailing_text": raw}


# --------------------------------------------------------------------------
# Heuristics on the SQL text
# --------------------------------------------------------------------------

NONDETERMINISTIC = re.compile(
    r"\b(?:(?:uuid|now|rand|random|shuffle|current_timezone|current_groups|ai_\w+)\s*\(|"
    r"(?:current_date|current_time|current_timestamp|localtime|localtimestamp|"
    r"current_user|current_catalog|current_schema)\b)",
    re.I,
)
NOT_RELATIONS = {
    "UNNEST", "TABLE", "LATERAL", "VALUES", "JSON_TABLE", "NEAREST", "SELECT",
    "WITH", "TIMESTAMP", "DATE", "TIME", "INTERVAL",
}
TOKEN = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|[A-Za-z_][\w$]*(?:\.(?:[A-Za-z_][\w$]*|"(?:[^"]|"")*"))*|\d[\w.]*|\S')


ZONE = re.compile(r"\b(?:America|Europe|Asia|Africa|Australia|Pacific|Atlantic|Indian|Antarctica)/[A-Za-z_]+(?:/[A-Za-z_]+)?\b")


def session_zone(ex: dict) -> str | None:
    """Heuristic: a time zone the documented result shows but the SQL does not
    name -- the session time zone the docs were written with."""
    exp = ex["expected"]
    if exp is None:
        return None
    text = exp if isinstance(exp, str) else "\n".join("|".join(r) for r in exp)
    for z in ZONE.findall(text):
        if z not in ex["sql"]:
            return z
    return None


def referenced_tables(sql: str) -> list[str]:
    code = strip_strings_and_comments(sql)
    toks = TOKEN.findall(code)
    ctes = {
        m.group(1).lower()
        for m in re.finditer(
            r"(?:\bWITH\s+(?:RECURSIVE\s+)?|,\s*)([A-Za-z_]\w*)\s*(?:\([^()]*\))?\s+AS\s*\(",
            code,
            re.I,
        )
    }
    tables = []
    parens = []  # True if the paren opened a subquery
    prev = None
    i = 0
    while i < len(toks):
        t = toks[i]
        u = t.upper()
        if t == "(":
            nxt = toks[i + 1].upper() if i + 1 < len(toks) else ""
            parens.append(
                nxt in ("SELECT", "WITH", "VALUES", "FROM")
                or (prev or "").upper() in ("NEAREST", "LATERAL")
            )
        elif t == ")":
            if parens:
                parens.pop()
        elif u in ("FROM", "JOIN", "INTO") and (not parens or parens[-1]):
            j = i + 1
            while j < len(toks):
                name = toks[j]
                if not re.match(r'^[A-Za-z_"]', name) or name.upper() in NOT_RELATIONS:
                    break
                if j + 1 < len(toks) and toks[j + 1] == "(":
                    break
                if name.lower() not in ctes:
                    tables.append(name)
                # skip alias, column list, TABLESAMPLE ..., then a comma continues
                k = j + 1
                depth = 0
                while k < len(toks):
                    if toks[k] == "(":
                        depth += 1
                    elif toks[k] == ")":
                        if depth == 0:
                            break
                        depth -= 1
                    elif depth == 0 and (toks[k] == "," or toks[k] == ";"):
                        break
                    elif depth == 0 and toks[k].upper() in (
                        "WHERE", "GROUP", "ORDER", "JOIN", "CROSS", "LEFT", "RIGHT",
                        "FULL", "INNER", "ON", "UNION", "EXCEPT", "INTERSECT",
                        "LIMIT", "OFFSET", "FETCH", "HAVING", "WINDOW", "SELECT",
                        "MATCH_RECOGNIZE", "NATURAL",
                    ):
                        break
                    k += 1
                if k < len(toks) and toks[k] == "," and (not parens or parens[-1]):
                    j = k + 1
                    continue
                break
        prev = t
        i += 1
    seen = []
    for t in tables:
        if t not in seen:
            seen.append(t)
    return seen


# --------------------------------------------------------------------------
# Page extraction
# --------------------------------------------------------------------------

PROSE_INLINE = re.compile(
    r"`(?P<expr>[^`]*\([^`]*\)[^`]*)`\s+(?P<verb>returns|will produce|produces|evaluates to)\s+`(?P<val>[^`]+)`"
)
PROSE_IS = re.compile(
    r"[Ff]or example,? `(?P<expr>[^`]+)` is `(?P<val>true|false|NULL|null|-?\d[\d.]*|'[^'`]*')`"
)
PROSE_AFTER = re.compile(
    r"^(?:The|This) (?:above|preceding) (?:query|statement|example) (?:returns|produces|evaluates to) `(?P<val>[^`]+)`"
)
PROSE_BEFORE = [
    (re.compile(r"\b(?:which|query|statement|example)\b[^.`]*?\b(?:returns|produces)(?: only)? `(?P<val>[^`]+)`[^.:]*:\s*$"), False),
    (re.compile(r"\bfail(?:s)? with (?:the |an )?error `(?P<val>[^`]+)`[^.:]*:\s*$"), True),
]


def paragraph_before(lines, in_code, idx):
    """Lines of the paragraph ending right before line idx (blank lines skipped)."""
    j = idx - 1
    while j >= 0 and not lines[j].strip() and not in_code[j]:
        j -= 1
    if j < 0 or in_code[j]:
        return None, j
    end = j
    while j >= 0 and lines[j].strip() and not in_code[j]:
        j -= 1
    return lines[j + 1 : end + 1], j + 1


def paragraph_after(lines, in_code, idx):
    j = idx + 1
    while j < len(lines) and not lines[j].strip() and not in_code[j]:
        j += 1
    if j >= len(lines) or in_code[j]:
        return None, j
    start = j
    while j < len(lines) and lines[j].strip() and not in_code[j]:
        j += 1
    return lines[start:j], start


def is_plain_prose(par: list[str]) -> bool:
    first = par[0].lstrip()
    return not (
        first.startswith(("#", ":::", "|", "(", "*", "-", "[", "```"))
        or re.match(r"^\s*:{3,}", first)
    )


def extract_page(page: str, text: str):
    lines, blocks, directives, context, in_code = parse_markdown(text)
    for d in directives:
        d["excluded_from_targets"] = excluded(page)
    examples = []
    stats = {
        "code_blocks": len(blocks),
        "sql_blocks": 0,
        "non_sql_blocks": [],
        "synopsis_statements": [],
        "result_blocks_unpaired": [],
        "tables_unpaired": [],
        "trailing_text_unparsed": [],
    }
    consumed_blocks = set()

    def new_example(sql, line, block, res=None):
        ex = {
            "id": None,
            "sql": sql,
            "expected": None,
            "kind": "none",
            "raw": None,
            "error": False,
            "function": block.func if block else context[line - 1][0],
            "section": block.section if block else context[line - 1][1],
            "line": line,
            "block_lang": block.lang if block else None,
        }
        if res:
            for k, v in res.items():
                ex[k] = v
        return ex

    for bi, b in enumerate(blocks):
        if bi in consumed_blocks:
            continue
        if b.lang.lower() in ("properties", "json", "yaml", "shell", "bash", "none"):
            stats["non_sql_blocks"].append({"line": b.first_line - 1, "lang": b.lang, "first": first_nonblank(b.lines)})
            continue
        stmts, prelude = split_statements(b.lines, b.first_line)
        block_examples = []
        for s in stmts:
            sql = dedent(s.code)
            if is_synopsis(sql):
                stats["synopsis_statements"].append({"line": s.line, "first": sql.split("\n")[0]})
                continue
            ex = new_example(sql, s.line, b)
            if s.leading:
                ex["leading_comment"] = "\n".join(l.strip() for l in s.leading)
            res = interpret_region(s.region)
            if res:
                if res.get("kind"):
                    for k, v in res.items():
                        ex[k] = v
                elif res.get("trailing_text"):
                    ex["trailing_text"] = res["trailing_text"]
                    stats["trailing_text_unparsed"].append({"line": s.line, "text": res["trailing_text"]})
            block_examples.append(ex)
        if not block_examples:
            stats["non_sql_blocks"].append({"line": b.first_line - 1, "lang": b.lang, "first": first_nonblank(b.lines)})
            if bi > 0 and is_result_block(b):
                stats["result_blocks_unpaired"].append({"line": b.first_line - 1, "first": first_nonblank(b.lines), "why": "no query block before it"})
            continue
        stats["sql_blocks"] += 1
        last = block_examples[-1]
        # a result given after the block: next block or a markdown table
        if last["expected"] is None:
            paired = False
            nb = blocks[bi + 1] if bi + 1 < len(blocks) else None
            gap = lines[b.end + 1 : nb.start] if nb else lines[b.end + 1 :]
            gap_text = [g for g in gap if g.strip()]
            if nb is not None and is_result_block(nb) and gap_ok(gap_text):
                if len(block_examples) == 1:
                    res = result_from_block(nb)
                    for k, v in res.items():
                        last[k] = v
                    if gap_text:
                        last["result_intro"] = " ".join(g.strip() for g in gap_text)
                    consumed_blocks.add(bi + 1)
                    paired = True
                else:
                    stats["result_blocks_unpaired"].append({"line": nb.first_line - 1, "first": first_nonblank(nb.lines), "why": "query block before it holds several statements"})
                    consumed_blocks.add(bi + 1)
            if not paired:
                j = b.end + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                t = markdown_table_at(lines, j, in_code)
                if t:
                    header, rows, _, raw = t
                    if len(block_examples) == 1:
                        last.update(
                            kind="markdown_table",
                            expected=[[md_unescape(c) for c in r] for r in rows],
                            columns=[md_unescape(c) for c in header],
                            raw=raw,
                        )
                        paired = True
                    else:
                        stats["tables_unpaired"].append({"line": j + 1, "why": "query block before it holds several statements"})
            if not paired and len(block_examples) == 1:
                par, pstart = paragraph_after(lines, in_code, b.end)
                if par and is_plain_prose(par):
                    m = PROSE_AFTER.search(" ".join(p.strip() for p in par))
                    if m:
                        last.update(kind="prose_block", expected=m.group("val"), raw=" ".join(p.strip() for p in par))
                        paired = True
                if not paired:
                    par, pstart = paragraph_before(lines, in_code, b.start)
                    if par and is_plain_prose(par):
                        joined = " ".join(p.strip() for p in par)
                        for rx, is_err in PROSE_BEFORE:
                            m = rx.search(joined)
                            if m:
                                last.update(kind="prose_block", expected=m.group("val"), raw=joined, error=is_err)
                                break
        examples.extend(block_examples)

    # Example | Result operator tables and prose outside code blocks
    i = 0
    while i < len(lines):
        t = markdown_table_at(lines, i, in_code)
        if t:
            header, rows, end, raw = t
            hl = [h.lower() for h in header]
            if "example" in hl and "result" in hl:
                ei, ri = hl.index("example"), hl.index("result")
                for k, r in enumerate(rows):
                    if len(r) <= max(ei, ri):
                        continue
                    ex = new_example("SELECT " + md_unescape(r[ei]), i + 3 + k, None)
                    ex.update(kind="operator_table", expected=md_unescape(r[ri]), raw=raw.split("\n")[2 + k], block_lang=None)
                    examples.append(ex)
            i = end
            continue
        i += 1
    para: list[tuple[int, str]] = []
    for idx in range(len(lines) + 1):
        if idx < len(lines) and lines[idx].strip() and not in_code[idx]:
            para.append((idx, lines[idx]))
            continue
        if para:
            joined = " ".join(p[1].strip() for p in para)
            for m in [*PROSE_INLINE.finditer(joined), *PROSE_IS.finditer(joined)]:
                # line of the match: find the paragraph line holding the expression start
                pos = m.start()
                acc = 0
                line_no = para[0][0] + 1
                for pidx, ptxt in para:
                    if acc + len(ptxt.strip()) + 1 > pos:
                        line_no = pidx + 1
                        break
                    acc += len(ptxt.strip()) + 1
                ex = new_example("SELECT " + m.group("expr"), line_no, None)
                ex.update(kind="prose", expected=m.group("val"), raw=m.group(0))
                examples.append(ex)
            para = []

    examples.sort(key=lambda e: e["line"])
    seen = {}
    for ex in examples:
        base = f"{page}:{ex['line']}"
        seen[base] = seen.get(base, 0) + 1
        ex["id"] = base if seen[base] == 1 else f"{base}#{seen[base]}"
        ex["tables"] = referenced_tables(ex["sql"])
        ex["nondeterministic"] = bool(NONDETERMINISTIC.search(strip_strings_and_comments(ex["sql"])))
        ex["session_zone"] = session_zone(ex)
        ex["excluded_from_targets"] = excluded(page)
        if ex.get("kind") == "none":
            ex["expected"] = None
            ex["raw"] = None
    return directives, examples, stats


def first_nonblank(ls):
    return next((l.strip() for l in ls if l.strip()), "")


def is_result_block(b: Block) -> bool:
    body = [l for l in b.lines if l.strip()]
    if not body:
        return False
    if KEYWORD_START.match(body[0]):
        return False
    if ERROR_TEXT.match(body[0]):
        return True
    return any(DASH_LINE.match(l) for l in body[:4])


def result_from_block(b: Block) -> dict:
    body = [l for l in b.lines if l.strip()]
    raw = "\n".join(b.lines).strip("\n")
    if ERROR_TEXT.match(body[0]):
        return {"kind": "error_block", "expected": "\n".join(l.strip() for l in body), "error": True, "raw": raw}
    cols, rows, rc, trunc = parse_psql_table(body)
    return {"kind": "psql_table", "expected": rows, "columns": cols, "row_count": rc, "truncated": trunc, "raw": raw}


def gap_ok(gap_text: list[str]) -> bool:
    """Between a query block and its result block: nothing, or one short lead-in."""
    if not gap_text:
        return True
    if len(gap_text) > 2:
        return False
    return is_plain_prose(gap_text)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def summarize(page, funcs, exs, st):
    kinds = {}
    for e in exs:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    with_res = sum(1 for e in exs if e["expected"] is not None)
    return {
        "functions": len(funcs),
        "functions_by_directive": count_by(funcs, "directive"),
        "functions_noindex": sum(1 for f in funcs if f["noindex"]),
        "examples": len(exs),
        "examples_with_result": with_res,
        "examples_without_result": len(exs) - with_res,
        "examples_with_result_standalone": sum(
            1 for e in exs if e["expected"] is not None and not e["tables"]
        ),
        "examples_expecting_error": sum(1 for e in exs if e.get("error")),
        "examples_by_kind": kinds,
        **st,
    }


def count_by(items, key):
    out = {}
    for it in items:
        out[it[key]] = out.get(it[key], 0) + 1
    return out


def markdown_table(summary: dict) -> str:
    rows = [
        "| page | functions | examples with result | (of which need no tables) | examples without result | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    tot = [0, 0, 0, 0]
    for page, s in summary.items():
        note = []
        if excluded(page):
            note.append("**excluded from targets**: " + excluded(page))
        if page in INDEX_PAGES:
            note.append("index page (no directives)")
        rows.append(
            f"| {page} | {s['functions']} | {s['examples_with_result']} | "
            f"{s['examples_with_result_standalone']} | {s['examples_without_result']} | {'; '.join(note)} |"
        )
        tot[0] += s["functions"]
        tot[1] += s["examples_with_result"]
        tot[2] += s["examples_with_result_standalone"]
        tot[3] += s["examples_without_result"]
    rows.append(f"| **total** | **{tot[0]}** | **{tot[1]}** | **{tot[2]}** | **{tot[3]}** | |")
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--git-dir", help="git directory (bare or not) of a Trino repository")
    src.add_argument("--docs-dir", help="sphinx root folder, or a folder of .md pages")
    ap.add_argument("--ref", default="HEAD", help="ref to read with --git-dir (default HEAD)")
    ap.add_argument("--repo", default="martint/trino", help="repository name recorded in stats.json")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--update-readme", action="store_true", help="rewrite the generated table in README.md")
    args = ap.parse_args(argv)

    if args.git_dir:
        pages, source = load_from_git(args.git_dir, args.ref)
    else:
        pages, source = load_from_dir(args.docs_dir)
    source["repository"] = args.repo
    source["extracted_at"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source["pages"] = len(pages)

    functions, examples, summary = {}, {}, {}
    for page, text in pages.items():
        funcs, exs, st = extract_page(page, text)
        functions[page] = funcs
        examples[page] = exs
        summary[page] = summarize(page, funcs, exs, st)

    # cross-check: names the function index links to that no directive defines
    defined = {f["name"].lower() for fs in functions.values() for f in fs}
    defined |= {f["base_name"].lower() for fs in functions.values() for f in fs}
    index_only = {}
    for page in INDEX_PAGES:
        if page in pages:
            names = sorted(set(re.findall(r"\{func\}`([^`<]+?)(?:\(\))?`", pages[page])))
            index_only[page] = [n for n in names if n.lower() not in defined]

    os.makedirs(args.out, exist_ok=True)

    def dump(name, obj):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, ensure_ascii=False)
            fh.write("\n")

    dump("functions.json", functions)
    dump("examples.json", examples)
    dump(
        "stats.json",
        {
            "source": source,
            "excluded_from_targets": EXCLUDED_FROM_TARGETS,
            "index_names_without_directive": index_only,
            "pages": summary,
        },
    )
    table = markdown_table(summary)
    if args.update_readme:
        path = os.path.join(args.out, "README.md")
        with open(path, encoding="utf-8") as fh:
            readme = fh.read()
        begin, end = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"
        a, b = readme.index(begin) + len(begin), readme.index(end)
        readme = readme[:a] + "\n" + table + "\n" + readme[b:]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(readme)
    print(table)
    nf = sum(len(v) for v in functions.values())
    ne = sum(len(v) for v in examples.values())
    nr = sum(1 for v in examples.values() for e in v if e["expected"] is not None)
    print(f"\n{len(pages)} pages, {nf} functions, {ne} examples ({nr} with result)", file=sys.stderr)


if __name__ == "__main__":
    main()
