#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Mutation testing of the code that guards the user's data.

One small mutation at a time is applied to a C source file, in a scratch
copy of the tree (never in the checkout), and the unit tests that reach
that file are run; if they all pass, a fast subset of the integration
tests is run as well.  A mutant that no test notices "survives".

Operators (comments, string and character literals and preprocessor
lines are never mutated):

  flip(A,B)    flip a comparison: == and !=, < and >=, > and <=
  bound(A,B)   move a bound by one: < to <=, <= to <, > to >=, >= to >
  swap(A,B)    swap && and ||
  drop-return  remove a `return VALUE;` statement that is (or ends) the
               body of an `if` or `else` and returns an error: -EXXX,
               -errno, false, or a call of a *fail/mismatch/damaged/
               bad_magic function (the statement becomes `{}`)
  drop-goto    remove a `goto LABEL;` that is (or ends) such a body
  zero-error   an assignment `X = -EXXX;` or `X = -errno;` made `X = 0;`

A mutant is named FILE:LINE:COL:OPERATOR.  One that does not compile is
"invalid" and not counted.  tests/mutate-equivalent.txt lists mutants
that no input can tell from the original, by a key that survives
unrelated line moves:

  FILE:OPERATOR:STRIPPED-ORIGINAL-LINE[:OCCURRENCE] # reason

OCCURRENCE (from 1, default 1) tells apart the mutants with the same
file, operator and stripped line.  The score of a file is
killed / (mutants - equivalent).

Usage: tests/mutate.py [--file F] [--jobs N] [--list] [--report PATH]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EQUIVALENT_FILE = os.path.join(TOP, "tests", "mutate-equivalent.txt")

FILES = ["send-stream.c", "send-frame.c", "confined-path.c", "paths.c",
         "resume.c", "receive-resume.c", "send-pump.c"]

# The unit tests that can reach each file, directly or through a module
# that calls it.  When unsure, a test is included: a missed one is worse
# than a slower run.
UNIT_MAP = {
    "send-stream.c": ["unit-send-stream", "unit-send-frame",
                      "unit-receive-resume"],
    "send-frame.c": ["unit-send-frame", "unit-send-stream", "unit-send-pump",
                     "unit-resume", "unit-receive-resume"],
    "confined-path.c": ["unit-confined-path", "unit-dir-times"],
    "paths.c": ["unit-confined-path", "unit-dir-times"],
    "resume.c": ["unit-resume", "unit-receive-resume"],
    "receive-resume.c": ["unit-receive-resume", "unit-resume"],
    "send-pump.c": ["unit-send-pump"],
}

# The fast integration tests relevant to each file (about a minute at
# most per mutant on a 2-core machine).
INTEGRATION_MAP = {
    "send-stream.c": ["test-dump-crafted", "test-dump-corrupt",
                      "test-dump-corpus"],
    "send-frame.c": ["test-dump-crafted", "test-dump-corrupt", "test-send"],
    "confined-path.c": ["test-to-dir", "test-receive-errors"],
    "paths.c": ["test-to-dir"],
    "resume.c": ["test-enospc-resume"],
    "receive-resume.c": ["test-enospc-resume"],
    "send-pump.c": ["test-send", "test-stopped-send"],
}

UNIT_TIMEOUT = 30
INTEGRATION_TIMEOUT = 300

# A make file beside the project's: unit test objects built once, so that
# a mutant only recompiles its own object and relinks.
MUTATE_MK = """include Makefile
.PRECIOUS: tests/%.mut.o
tests/%.mut.o: tests/%.c $(wildcard *.h tests/*.h)
\t$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -I. -c -o $@ $<
tests/%.mut: tests/%.mut.o $(LIB_OBJS)
\t$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)
"""


# ---------------------------------------------------------------- source


def code_only(text):
    """text with comments, literals and preprocessor lines blanked.

    The result has the same length and the same newlines, so offsets and
    line numbers of both agree.
    """
    out = list(text)
    i, n = 0, len(text)
    line_start = True

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if line_start and c == "#":
            j = i
            while j < n and not (text[j] == "\n" and text[j - 1] != "\\"):
                j += 1
            blank(i, j)
            i = j
            continue
        if c == "\n":
            line_start = True
            i += 1
            continue
        if c in " \t":
            i += 1
            continue
        line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        else:
            i += 1
    return "".join(out)


FLIP = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
BOUND = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
SWAP = {"&&": "||", "||": "&&"}
OP_RE = re.compile(r"<<=?|>>=?|->|&&|\|\||==|!=|<=|>=|<|>")
ERROR_VALUE_RE = re.compile(
    r"^(-E[A-Z0-9]+|-errno|false|"
    r"\w*(fail|mismatch|damaged|bad_magic)\w*\s*\(.*)$", re.S)
ZERO_RE = re.compile(r"\b([\w>.*-]+)\s*=\s*(-E[A-Z0-9]+|-errno)\s*;")
STMT_RE = re.compile(r"\b(return|goto)\b")


class Mutant:
    """One mutation: where, what, and the text before and after."""

    def __init__(self, path, line, col, op, start, end, repl, orig_line):
        self.file = path
        self.line = line
        self.col = col
        self.op = op
        self.start = start
        self.end = end
        self.repl = repl
        self.orig_line = orig_line
        self.mut_line = ""
        self.key = ""
        self.status = None
        self.detail = ""

    @property
    def ident(self):
        return "%s:%d:%d:%s" % (self.file, self.line, self.col, self.op)

    def apply(self, text):
        return text[:self.start] + self.repl + text[self.end:]


def line_col(text, pos):
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def match_back(code, pos, close, open_):
    """Offset of the bracket open_ matching the close at pos."""
    depth = 0
    for k in range(pos, -1, -1):
        if code[k] == close:
            depth += 1
        elif code[k] == open_:
            depth -= 1
            if depth == 0:
                return k
    return -1


def prev_token_end(code, pos):
    k = pos - 1
    while k >= 0 and code[k].isspace():
        k -= 1
    return k


def follows_if_or_else(code, pos):
    """Whether the code just before pos ends an `if (...)` or an `else`."""
    k = prev_token_end(code, pos)
    if k < 0:
        return False
    if code[k] == ")":
        o = match_back(code, k, ")", "(")
        return o > 0 and re.search(r"\bif\s*$", code[:o]) is not None
    return re.search(r"\belse$", code[:k + 1]) is not None


def in_if_body(code, pos):
    """Whether the statement at pos is the body of an if/else, or in it."""
    if follows_if_or_else(code, pos):
        return True
    k = prev_token_end(code, pos)
    if k >= 0 and code[k] not in ";{}":
        return False
    depth = 0
    for j in range(pos - 1, -1, -1):
        if code[j] == "}":
            depth += 1
        elif code[j] == "{":
            if depth == 0:
                return follows_if_or_else(code, j)
            depth -= 1
    return False


def statement_end(code, pos):
    """Offset just past the `;` that ends the statement at pos."""
    depth = 0
    for k in range(pos, len(code)):
        if code[k] in "([{":
            depth += 1
        elif code[k] in ")]}":
            depth -= 1
        elif code[k] == ";" and depth == 0:
            return k + 1
    return -1


def operator_mutants(path, code):
    found = []
    for m in OP_RE.finditer(code):
        tok = m.group(0)
        for table, name in ((FLIP, "flip"), (BOUND, "bound"), (SWAP, "swap")):
            if tok in table:
                new = table[tok]
                found.append((m.start(), m.end(), new,
                              "%s(%s,%s)" % (name, tok, new)))
    return found


def statement_mutants(path, code):
    found = []
    for m in STMT_RE.finditer(code):
        end = statement_end(code, m.start())
        if end < 0 or not in_if_body(code, m.start()):
            continue
        value = code[m.end():end - 1].strip()
        if m.group(1) == "return" and not ERROR_VALUE_RE.match(value):
            continue
        op = "drop-return" if m.group(1) == "return" else "drop-goto"
        found.append((m.start(), end, "{}", op))
    for m in ZERO_RE.finditer(code):
        found.append((m.start(2), m.end(2), "0", "zero-error"))
    return found


def read_source(path, rev):
    """A file of the checkout, or of commit rev."""
    if rev:
        return subprocess.run(["git", "show", "%s:%s" % (rev, path)],
                              cwd=TOP, check=True, capture_output=True,
                              text=True).stdout
    with open(os.path.join(TOP, path)) as f:
        return f.read()


def find_mutants(path, text):
    """Every mutant of one file, in file order, with its stable key."""
    code = code_only(text)
    lines = text.split("\n")
    raw = operator_mutants(path, code) + statement_mutants(path, code)
    raw.sort()
    mutants, seen = [], {}
    for start, end, repl, op in raw:
        line, col = line_col(text, start)
        mu = Mutant(path, line, col, op, start, end, repl, lines[line - 1])
        mutated = mu.apply(text).split("\n")
        mu.mut_line = mutated[line - 1]
        base = "%s:%s:%s" % (path, op, mu.orig_line.strip())
        seen[base] = seen.get(base, 0) + 1
        mu.key = base if seen[base] == 1 else "%s:%d" % (base, seen[base])
        mutants.append(mu)
    return mutants


def load_equivalents(path=EQUIVALENT_FILE):
    """Keys of the declared equivalent mutants, with their reasons."""
    eq = {}
    if not os.path.exists(path):
        return eq
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, _, reason = line.partition(" # ")
            key = key.rstrip()
            if re.search(r":1$", key):
                key = key[:-2]
            eq[key] = reason.strip()
    return eq


# ---------------------------------------------------------------- running


def run(cmd, cwd, timeout, env=None):
    """(returncode or None on timeout, output), killing the whole group."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out.decode(errors="replace")


def make(tree, targets, timeout=300):
    return run(["make", "-f", "mutate.mk"] + targets, tree, timeout)


def copy_work_tree(tree):
    """The tracked files of the checkout, as they are now, into tree."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=TOP,
                           check=True, capture_output=True).stdout
    for rel in files.decode().split("\0"):
        if not rel or not os.path.isfile(os.path.join(TOP, rel)):
            continue
        dst = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(TOP, rel), dst, follow_symlinks=False)


def copy_revision(rev, tree):
    """The tracked files of a commit into tree."""
    archive = subprocess.run(["git", "archive", rev], cwd=TOP, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)


class Worker:
    """A scratch copy of the tree, built once, where mutants are tried."""

    def __init__(self, base, index, cflags):
        self.root = os.path.join(base, "w%d" % index)
        self.tree = os.path.join(self.root, "main")
        self.cflags = cflags

    def setup(self, unit_tests, rev):
        os.makedirs(self.tree)
        if rev:
            copy_revision(rev, self.tree)
        else:
            copy_work_tree(self.tree)
        # The tests find the shared stream corpus at TOP/../shared.
        shared = os.path.join(os.path.dirname(TOP), "shared")
        if os.path.isdir(shared):
            os.symlink(shared, os.path.join(self.root, "shared"))
        with open(os.path.join(self.tree, "mutate.mk"), "w") as f:
            f.write(MUTATE_MK)
        targets = ["btrfs"] + ["tests/%s.mut" % t for t in unit_tests]
        rc, out = make(self.tree, self.make_vars() + targets, 1800)
        if rc != 0:
            raise RuntimeError("unmutated build failed:\n" + out[-3000:])

    def make_vars(self):
        return ["CFLAGS=%s" % self.cflags] if self.cflags else []

    def unit_tests(self, mu, available):
        return [t for t in UNIT_MAP.get(mu.file, []) if t in available]

    def try_mutant(self, mu, text, available, integration):
        """Set mu.status: killed, timeout, survived or invalid."""
        src = os.path.join(self.tree, mu.file)
        with open(src, "w") as f:
            f.write(mu.apply(text))
        try:
            self.judge(mu, available, integration)
        finally:
            with open(src, "w") as f:
                f.write(text)

    def judge(self, mu, available, integration):
        units = self.unit_tests(mu, available)
        obj = mu.file[:-2] + ".o"
        rc, out = make(self.tree, self.make_vars() + [obj])
        if rc != 0:
            mu.status, mu.detail = "invalid", "does not compile"
            return
        rc, out = make(self.tree, self.make_vars() +
                       ["tests/%s.mut" % t for t in units])
        if rc != 0:
            mu.status, mu.detail = "invalid", "does not link"
            return
        for t in units:
            rc, out = run(["./tests/%s.mut" % t], self.tree, UNIT_TIMEOUT)
            if rc is None:
                mu.status, mu.detail = "killed", "%s timed out" % t
                return
            if rc != 0:
                mu.status, mu.detail = "killed", t
                return
        if integration:
            self.judge_integration(mu)
        else:
            mu.status, mu.detail = "survived", "unit tests pass"

    def judge_integration(self, mu):
        names = INTEGRATION_MAP.get(mu.file, [])
        rc, _ = make(self.tree, self.make_vars() + ["btrfs"])
        if rc != 0:
            mu.status, mu.detail = "invalid", "btrfs does not link"
            return
        env = dict(os.environ, BTRFS_BIN=os.path.join(self.tree, "btrfs"),
                   CORRUPT_VARIANTS="20", TEST_TIMEOUT="150")
        env.pop("CI", None)
        cmd = ["tests/run-integration.sh"] + ["tests/%s.sh" % n
                                              for n in names]
        rc, out = run(cmd, self.tree, INTEGRATION_TIMEOUT, env)
        if rc is None:
            mu.status, mu.detail = "killed", "integration timed out"
        elif rc != 0:
            failed = re.findall(r"^failed: (.*)$", out, re.M)
            mu.status = "killed"
            mu.detail = failed[0] if failed else "integration"
        else:
            mu.status, mu.detail = "survived", "unit and integration pass"


def available_unit_tests(tree):
    """The unit tests of the tree's Makefile."""
    with open(os.path.join(tree, "Makefile")) as f:
        mk = f.read()
    m = re.search(r"^UNIT_TESTS :=((?:.*\\\n)*.*)$", mk, re.M)
    names = re.findall(r"tests/(unit-[\w-]+)", m.group(1)) if m else []
    return set(names)


def run_all(mutants, texts, args):
    base = tempfile.mkdtemp(prefix="mutate.", dir="/tmp")
    workers = [Worker(base, i, args.cflags) for i in range(args.jobs)]
    try:
        os.makedirs(workers[0].tree)
        if args.rev:
            copy_revision(args.rev, workers[0].tree)
        else:
            copy_work_tree(workers[0].tree)
        available = available_unit_tests(workers[0].tree)
        shutil.rmtree(workers[0].root)
        threads = [threading.Thread(target=w.setup,
                                    args=(available, args.rev))
                   for w in workers]
        errors = []
        for w, t in zip(workers, threads):
            t.start()
        for t in threads:
            t.join()
        for w in workers:
            if not os.path.exists(os.path.join(w.tree, "btrfs")):
                errors.append(w.tree)
        if errors:
            raise SystemExit("mutate: the unmutated build failed in %s" %
                             errors[0])
        queue = list(mutants)
        lock = threading.Lock()
        done = [0]

        def loop(w):
            while True:
                with lock:
                    if not queue:
                        return
                    mu = queue.pop(0)
                w.try_mutant(mu, texts[mu.file], available,
                             not args.no_integration)
                with lock:
                    done[0] += 1
                    print("[%d/%d] %-9s %s  %s" % (
                        done[0], len(mutants), mu.status, mu.ident,
                        mu.detail), file=sys.stderr, flush=True)

        threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- report


def score(killed, counted):
    return "%.1f%%" % (100.0 * killed / counted) if counted else "-"


def report(files, mutants, eq, elapsed):
    out = ["# Mutation report", "",
           "| file | mutants | killed | survived | equivalent | invalid "
           "| score |", "|---|---|---|---|---|---|---|"]
    for path in files:
        mine = [m for m in mutants if m.file == path]
        valid = [m for m in mine if m.status != "invalid"]
        killed = sum(m.status == "killed" for m in valid)
        survived = sum(m.status == "survived" for m in valid)
        equiv = sum(m.status == "equivalent" for m in valid)
        invalid = len(mine) - len(valid)
        out.append("| %s | %d | %d | %d | %d | %d | %s |" % (
            path, len(valid), killed, survived, equiv, invalid,
            score(killed, len(valid) - equiv)))
    out += ["", "Score: killed / (mutants - equivalent); invalid mutants "
            "(that do not compile) are not counted.",
            "Run time: %d s." % elapsed, ""]
    survivors = [m for m in mutants if m.status == "survived"]
    out.append("## Survivors (%d)" % len(survivors))
    out.append("")
    for m in survivors:
        out.append("- `%s:%d` %s: `%s` -> `%s`" % (
            m.file, m.line, m.op, m.orig_line.strip(), m.mut_line.strip()))
        out.append("  key: `%s`" % m.key)
    stale = [m for m in mutants if m.status == "killed" and m.key in eq]
    if stale:
        out += ["", "## Declared equivalent, but killed (%d)" % len(stale),
                ""]
        out += ["- `%s` (%s)" % (m.key, m.detail) for m in stale]
    return "\n".join(out) + "\n"


def save_json(path, mutants):
    with open(path, "w") as f:
        json.dump([{"id": m.ident, "key": m.key, "status": m.status,
                    "detail": m.detail, "line": m.orig_line.strip(),
                    "mutated": m.mut_line.strip()} for m in mutants],
                  f, indent=1)


def parse_args():
    ap = argparse.ArgumentParser(
        description="Mutation testing of the guarding code (see "
                    "tests/MUTATION.md).")
    ap.add_argument("--file", action="append",
                    help="mutate only this file (repeatable)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="mutants tried at once, one tree each (default 2)")
    ap.add_argument("--list", action="store_true",
                    help="list the mutants, run nothing")
    ap.add_argument("--lines", help="only mutants on lines A-B")
    ap.add_argument("--only", metavar="JSON",
                    help="run again only the survivors of an earlier "
                    "--json run (and mutants it did not have); the "
                    "others keep its outcome in the report")
    ap.add_argument("--check-equivalent", action="store_true",
                    help="run the declared equivalent mutants too: one "
                    "that is killed is reported as wrongly declared")
    ap.add_argument("--no-integration", action="store_true",
                    help="unit tests only")
    ap.add_argument("--cflags", default="",
                    help="CFLAGS for the scratch build (default: the "
                    "Makefile's)")
    ap.add_argument("--report", help="also write the report here")
    ap.add_argument("--json", help="write each mutant's outcome here")
    ap.add_argument("--rev", help="mutate this commit's tracked files "
                    "instead of the checkout's (e.g. HEAD~3, for a "
                    "before/after comparison)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch trees")
    return ap.parse_args()


def select(args, mutants):
    if args.lines:
        lo, _, hi = args.lines.partition("-")
        lo, hi = int(lo), int(hi or lo)
        mutants = [m for m in mutants if lo <= m.line <= hi]
    return mutants


def load_previous(path):
    """Outcomes of an earlier --json run, by key."""
    with open(path) as f:
        return {r["key"]: r for r in json.load(f)}


def split_by_previous(mutants, prev):
    """(to run, done): an earlier run's survivors (and mutants it did not
    have) are run again; the others keep its outcome."""
    todo, done = [], []
    for m in mutants:
        old = prev.get(m.key)
        if old and old["status"] not in ("survived", "equivalent"):
            m.status, m.detail = old["status"], old["detail"]
            done.append(m)
        else:
            todo.append(m)
    return todo, done


def main():
    args = parse_args()
    files = args.file or FILES
    for path in files:
        if path not in UNIT_MAP:
            raise SystemExit("mutate: no test map for %s" % path)
    texts, mutants = {}, []
    for path in files:
        texts[path] = read_source(path, args.rev)
        mine = find_mutants(path, texts[path])
        mutants += mine
    mutants = select(args, mutants)
    eq = load_equivalents()
    if args.list:
        for m in mutants:
            mark = "  [equivalent]" if m.key in eq else ""
            print("%s%s\n    key %s\n    - %s\n    + %s" % (
                m.ident, mark, m.key, m.orig_line.strip(),
                m.mut_line.strip()))
        print("%d mutants" % len(mutants))
        return 0
    start = time.time()
    todo = []
    candidates = mutants
    if args.only:
        candidates, _ = split_by_previous(mutants, load_previous(args.only))
    for m in candidates:
        if m.key in eq and not args.check_equivalent:
            m.status, m.detail = "equivalent", eq[m.key]
        else:
            todo.append(m)
    run_all(todo, texts, args)
    for m in mutants:
        if m.key in eq and m.status == "survived":
            m.status, m.detail = "equivalent", eq[m.key]
    text = report(files, mutants, eq, time.time() - start)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    if args.json:
        save_json(args.json, mutants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
