#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Fail on an assertion whose condition leaks out of it.

`check WHAT CMD...` (tests/lib.sh) and the helpers built like it run CMD
and count it.  In `check "x" [ a ] && [ b ]` the shell runs `[ b ]` after
check returned 0, outside it, so nothing asserts `b`; `|| ...` and `| ...`
after a check are the same mistake.  This reads every test script as the
shell would split it (quotes, backslash continuations, a line that ends in
an operator) and names each such check.

usage: lint-checks.py [SCRIPT...]   (default: tests/*.sh)
       lint-checks.py --self-test
"""
import glob
import os
import re
import shlex
import sys

# Helpers that take a command to assert, as check does.
ASSERTERS = ("check", "expect", "expect_error", "expect_failure",
             "json_ok", "json_check")
LEAKS = ("&&", "||", "|")
CONTINUES = ("\\", "&&", "||", "|")


def logical_lines(path):
    """Yield (first line number, text) of each command, continuations
    joined, here-documents skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from logical_lines_of(f.read().split("\n"))


def logical_lines_of(lines):
    i = 0
    while i < len(lines):
        start, text = i + 1, lines[i]
        while text.rstrip().endswith(CONTINUES) and i + 1 < len(lines):
            text = text.rstrip()
            if text.endswith("\\"):
                text = text[:-1]
            i += 1
            text += " " + lines[i]
        i += 1
        if re.search(r"<<(?!<)", text.replace("<<<", "")):
            i = skip_heredoc(lines, i, text)
        yield start, text


def skip_heredoc(lines, i, text):
    """Index of the line after the here-document that TEXT opens."""
    word = re.split(r"<<(?!<)", text.replace("<<<", ""), 1)[1].lstrip("-").strip().split()
    if not word:
        return i
    end = word[0].strip("'\"")
    while i < len(lines) and lines[i].strip() != end:
        i += 1
    return i + 1


def without_substitutions(text):
    """TEXT with each unquoted $(...), <(...) and >(...) replaced by a word:
    an operator inside one belongs to another command."""
    out, depth, quote, i = [], 0, None, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"" and depth == 0:
            quote = c
        elif c == "\\":
            i += 1
        elif c == "(" and (depth or i and text[i - 1] in "$<>"):
            depth += 1
        elif c == ")" and depth:
            depth -= 1
            if not depth:
                out.append("SUBST")
            i += 1
            continue
        if depth == 0:
            out.append(text[i:i + 2] if c == "\\" else c)
        i += 1
    return "".join(out)


def tokens(text):
    lex = shlex.shlex(without_substitutions(text), posix=True, punctuation_chars="|&;")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        return list(lex)
    except ValueError:
        return []


def leaked_operator(text):
    """The operator that ends an assertion's command early, or None."""
    toks = tokens(text)
    if not toks or toks[0] not in ASSERTERS:
        return None
    for tok in toks[1:]:
        if tok in LEAKS:
            return tok
        if tok == ";":
            return None
    return None


# The lint's own cases: (script text, the operator it must find or None).
SELF_TEST = (
    ('check "x" [ a ] && [ b ]', "&&"),
    ('check "x" \\\n\t[ a ] &&\n\t[ b ]', "&&"),
    ('check "x" grep -q y f || fail z', "||"),
    ('expect_error "x" "msg" cmd | tee log', "|"),
    ('check "x" eval \'[ a ] && [ b ]\'', None),
    ('check "x" grep -q y <(a && b | c)', None),
    ('check "x" [ "$(a | b)" = "a && b" ]', None),
    ('[ -n "$x" ] && check "x" true', None),
    ('check "x" true; echo && :', None),
    ('cat <<EOF\ncheck "x" [ a ] && [ b ]\nEOF', None),
    ('read -r a <<<"$(f)"\ncheck "x" [ a ] && [ b ]', "&&"),
)


def self_test():
    bad = 0
    for text, want in SELF_TEST:
        lines = text.split("\n")
        got = [leaked_operator(t) for _, t in logical_lines_of(lines)]
        got = next((g for g in got if g), None)
        if got != want:
            bad += 1
            print("lint-checks self-test: %r: found %r, want %r"
                  % (text, got, want), file=sys.stderr)
    return 1 if bad else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    top = os.path.dirname(os.path.abspath(__file__))
    paths = argv[1:] or sorted(glob.glob(os.path.join(top, "*.sh")))
    found = 0
    for path in paths:
        for line, text in logical_lines(path):
            op = leaked_operator(text)
            if op:
                found += 1
                print("%s:%d: '%s' after %s ends the assertion early: %s"
                      % (os.path.relpath(path), line, op,
                         text.split()[0], " ".join(text.split())[:100]))
    if found:
        print("lint-checks: %d assertions assert less than they say"
              % found, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
