#!/usr/bin/env python3
"""Mutation testing of one header: plant one small change at a time, rebuild one test target, run
it, and report the mutants the tests did not notice (docs/testing.md, "Mutation testing").

Each mutant changes one operator on one line: a comparison (< <= > >= == !=), && / ||, or + / -
in an expression. Comparisons are recognised only with a space on each side, which in this code
base (clang-format style) tells them from template brackets. A mutant that does not compile is
reported as such and does not count. The header is restored after every mutant, also on Ctrl-C.

    tests/mutation/mutate.py include/tessel/metrics/aggregate.hpp --target test_metrics \\
        --lines 40-70 --filter '*ODS*,*ties*'

Run it from the repository root on a configured build directory (--build, default build). Each
mutant costs one incremental build of the target, so keep --lines and the target small.

Cheaper: --sources builds a small test executable of its own from the listed test files instead of
a whole test_<area> target. Each file is compiled with its own command from the build's
compile_commands.json (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON) and linked with
tests/main.cpp's object, so a mutant costs the compilation of those files only. Several headers
may be given, each as path or path:FIRST-LAST; a summary line per header follows the run:

    tests/mutation/mutate.py include/tessel/loss/cross_entropy.hpp:40-90 \
        include/tessel/loss/modularity.hpp --sources tests/unit/loss/test_losses.cpp \
        --mutant-seconds 240 --budget-minutes 30

Side tooling (python3 standard library only); not part of ctest or CI.
"""
import argparse
import os
import json
import re
import shlex
import signal
import time
import subprocess
import sys

# (pattern, replacement, description). Patterns see a line with comments and strings blanked.
OPERATORS = [
    (r" <= ", " < ", "<= to <"),
    (r" < ", " <= ", "< to <="),
    (r" >= ", " > ", ">= to >"),
    (r" > ", " >= ", "> to >="),
    (r" == ", " != ", "== to !="),
    (r" != ", " == ", "!= to =="),
    (r" && ", " || ", "&& to ||"),
    (r" \|\| ", " && ", "|| to &&"),
    (r"(?<=[\w)\]]) \+ (?=[\w(])", " - ", "+ to -"),
    (r"(?<=[\w)\]]) - (?=[\w(])", " + ", "- to +"),
]


def test_verdict(code):
    """What a mutant's test exit code says: None is a timeout, a negative code a signal."""
    if code is None:
        return "killed (timed out)"
    if code < 0:
        return f"killed (signal {-code})"
    return "killed" if code != 0 else "SURVIVED"


def blank_comments_and_strings(line):
    """The line with string literals and // comments replaced by spaces (same length)."""
    out, i, in_str = [], 0, False
    while i < len(line):
        c = line[i]
        if in_str:
            if c == "\\" and i + 1 < len(line):
                out.append("  ")
                i += 2
                continue
            if c == '"':
                in_str = False
            out.append(" ")
        elif c == '"':
            in_str = True
            out.append(" ")
        elif line.startswith("//", i):
            out.append(" " * (len(line) - i))
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def mutants(lines, first, last):
    """(line index, new line, description) for every operator occurrence in lines[first:last]."""
    for n in range(first, min(last, len(lines))):
        line = lines[n]
        stripped = line.lstrip()
        if stripped.startswith(("#", "//", "///", "*", "/*", "template")):
            continue
        code = blank_comments_and_strings(line)
        for pattern, repl, what in OPERATORS:
            for m in re.finditer(pattern, code):
                # A "<" inside "<<" or a ">" inside ">>" / "->" is not a comparison.
                if line[m.start():m.end()].strip() in ("<", ">") and (
                        line[m.start() - 1:m.start() + 1] in ("<<", ">>", "->")):
                    continue
                yield n, line[:m.start()] + repl + line[m.end():], what


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return None, "timeout"


class AdHocBuild:
    """A test executable of the given sources + tests/main.cpp, compiled with the build's flags."""

    def __init__(self, build, sources, extra_flags=()):
        db_path = os.path.join(build, "compile_commands.json")
        if not os.path.exists(db_path):
            sys.exit(f"{db_path} is missing; configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
        with open(db_path) as f:
            db = json.load(f)
        self.dir = os.path.abspath(os.path.join(build, "mutation"))
        os.makedirs(self.dir, exist_ok=True)
        self.compiles = []  # (argv, directory)
        objects = []
        for k, src in enumerate(sources):
            entry = self._entry(db, os.path.abspath(src))
            if entry is None:
                sys.exit(f"{src} is not in {db_path}")
            obj = os.path.join(self.dir, f"{k}_{os.path.basename(src)}.o")
            argv = self._retarget(entry, obj)
            argv[1:1] = list(extra_flags)
            self.compiles.append((argv, entry["directory"]))
            objects.append(obj)
        main_entry = self._entry(db, os.path.abspath("tests/main.cpp"), "tessel_test_main")
        if main_entry is None:
            sys.exit("tests/main.cpp (tessel_test_main) is not in compile_commands.json")
        self.main_obj = os.path.join(self.dir, "main.cpp.o")
        self.main_compile = (self._retarget(main_entry, self.main_obj), main_entry["directory"])
        self.exe = os.path.join(self.dir, "test_adhoc")
        compiler = self.compiles[0][0][0]
        self.link = [compiler, "-fopenmp"] + objects + [self.main_obj, "-o", self.exe]

    @staticmethod
    def _entry(db, path, output_hint=""):
        for e in db:
            f = os.path.normpath(os.path.join(e["directory"], e["file"]))
            if f == path and output_hint in e.get("output", e.get("command", "")):
                return e
        # A unity build (TESSEL_UNITY_TESTS) lists the batch, not its files: take the command of
        # the batch that includes the file, with the file as its source.
        for e in db:
            f = os.path.normpath(os.path.join(e["directory"], e["file"]))
            if "/Unity/unity_" not in f or not os.path.exists(f):
                continue
            with open(f) as batch:
                if f'"{path}"' not in batch.read():
                    continue
            argv = list(e["arguments"] if "arguments" in e else shlex.split(e["command"]))
            argv = [path if os.path.normpath(os.path.join(e["directory"], a)) == f else a for a in argv]
            return {"directory": e["directory"], "file": path, "arguments": argv}
        return None

    @staticmethod
    def _retarget(entry, obj):
        argv = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        argv = list(argv)
        argv[argv.index("-o") + 1] = obj
        return argv

    def _compile(self, argv, cwd, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return None, "timeout"
        try:
            p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=left, text=True)
            return p.returncode, p.stdout
        except subprocess.TimeoutExpired:
            return None, "timeout"

    def build(self, seconds):
        """(True, "") when the executable is up to date, (False, log) on an error, (None, ...) when
        the time ran out."""
        deadline = time.monotonic() + seconds
        steps = [] if os.path.exists(self.main_obj) else [self.main_compile]
        for argv, cwd in steps + self.compiles + [(self.link, None)]:
            code, out = self._compile(argv, cwd, deadline)
            if code != 0:
                return (None if code is None else False), out
        return True, ""


def parse_header(spec, lines_opt):
    """(path, first, last) from path or path:FIRST-LAST; --lines applies to a bare path."""
    m = re.fullmatch(r"(.*?):(\d+)-(\d+)", spec)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    if lines_opt:
        lo, hi = lines_opt.split("-")
        return spec, int(lo), int(hi)
    return spec, 1, 10**9


def main_sources(a):
    headers = [parse_header(h, a.lines) for h in a.header]
    originals = {}
    for path, _, _ in headers:
        if subprocess.run(["git", "diff", "--quiet", "--", path]).returncode != 0:
            sys.exit(f"{path} has uncommitted changes; mutate a clean file so that restoring it is safe")
        with open(path) as f:
            originals[path] = f.read()

    plan = []  # (header, line index, new line, description)
    for path, first, last in headers:
        lines = originals[path].split("\n")
        plan += [(path, n, new, what) for n, new, what in mutants(lines, first - 1, last)]
    if a.list:
        for path, n, new, what in plan:
            print(f"{path}:{n + 1}: {what}: {new.strip()}")
        return 0

    def restore(*_):
        for path, text in originals.items():
            with open(path, "w") as f:
                f.write(text)
        if _:
            sys.exit("interrupted; headers restored")

    signal.signal(signal.SIGINT, restore)
    signal.signal(signal.SIGTERM, restore)

    start = time.monotonic()
    budget = a.budget_minutes * 60 if a.budget_minutes else float("inf")
    adhoc = AdHocBuild(a.build, a.sources, ["-D_GLIBCXX_ASSERTIONS"] if a.assertions else [])
    test_cmd = [adhoc.exe] + ([f"--test-case={a.filter}"] if a.filter else [])
    ok, out = adhoc.build(a.timeout)
    if ok is not True:
        sys.exit("the unmutated ad-hoc build fails:\n" + out[-3000:])
    code, out = run(test_cmd, a.test_timeout)
    if code != 0:
        sys.exit("the tests fail (or time out) before any mutation:\n" + out[-2000:])
    print(f"unmutated build and run: {time.monotonic() - start:.0f} s, {len(plan)} mutants planned",
          flush=True)

    results = {path: [] for path, _, _ in headers}
    not_run = {path: 0 for path, _, _ in headers}
    try:
        for k, (path, n, new_line, what) in enumerate(plan):
            if (a.max and k >= a.max) or time.monotonic() - start > budget:
                not_run[path] += 1
                continue
            lines = originals[path].split("\n")
            with open(path, "w") as f:
                f.write("\n".join(lines[:n] + [new_line] + lines[n + 1:]))
            t0 = time.monotonic()
            ok, _ = adhoc.build(min(a.mutant_seconds, a.timeout))
            if ok is None:
                verdict = "build over time"
            elif not ok:
                verdict = "does not compile"
            else:
                left = max(1, min(a.test_timeout, a.mutant_seconds - (time.monotonic() - t0)))
                verdict = test_verdict(run(test_cmd, left)[0])
            restore()
            results[path].append((n + 1, what, verdict, new_line.strip()))
            print(f"{path}:{n + 1}: {what}: {verdict} ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        restore()

    print(f"\nsummary ({(time.monotonic() - start) / 60:.1f} min)")
    any_survived = False
    for path, _, _ in headers:
        rs = results[path]
        killed = sum(r[2].startswith("killed") for r in rs)
        survived = [r for r in rs if r[2] == "SURVIVED"]
        dnc = sum(r[2] == "does not compile" for r in rs)
        over = sum(r[2] == "build over time" for r in rs)
        scored = killed + len(survived)
        score = f"{100 * killed / scored:.0f}%" if scored else "n/a"
        extra = (f", {over} over time" if over else "") + (f", {not_run[path]} not run" if not_run[path] else "")
        print(f"{path}: {len(rs)} mutants, {killed} killed, {len(survived)} survived, "
              f"{dnc} did not compile{extra}, score {score}")
        for line, what, _, text in survived:
            any_survived = True
            print(f"  survived {path}:{line} ({what}): {text}")
    return 1 if any_survived else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("header", nargs="+", help="header, or header:FIRST-LAST with --sources")
    ap.add_argument("--target", help="test target to rebuild, e.g. test_metrics")
    ap.add_argument("--assertions", action="store_true",
                    help="with --sources: compile the test files with -D_GLIBCXX_ASSERTIONS, so that a "
                         "mutant reading past a std::vector's end aborts")
    ap.add_argument("--sources", nargs="+", default=[],
                    help="build an ad-hoc test executable from these test files instead of --target")
    ap.add_argument("--mutant-seconds", type=int, default=600,
                    help="with --sources: time for one mutant's build and run")
    ap.add_argument("--budget-minutes", type=float, default=0,
                    help="with --sources: start no mutant after this many minutes (0: no limit)")
    ap.add_argument("--filter", default="", help="doctest --test-case filter")
    ap.add_argument("--lines", default="", help="1-based inclusive range, e.g. 40-70 (default: all)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--max", type=int, default=0, help="stop after this many mutants (0: all)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per build")
    ap.add_argument("--test-timeout", type=int, default=120,
                    help="seconds per test run; a mutant that makes the tests hang counts as killed")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit, building nothing")
    a = ap.parse_args()
    if a.sources:
        return main_sources(a)
    if not a.target or len(a.header) != 1:
        ap.error("give --sources, or --target with one header")
    a.header = a.header[0]

    if subprocess.run(["git", "diff", "--quiet", "--", a.header]).returncode != 0:
        sys.exit(f"{a.header} has uncommitted changes; mutate a clean file so that restoring it is safe")
    with open(a.header) as f:
        original = f.read()
    lines = original.split("\n")
    first, last = 0, len(lines)
    if a.lines:
        lo, hi = a.lines.split("-")
        first, last = int(lo) - 1, int(hi)

    if a.list:
        for n, new_line, what in mutants(lines, first, last):
            print(f"{a.header}:{n + 1}: {what}: {new_line.strip()}")
        return 0

    def restore(*_):
        with open(a.header, "w") as f:
            f.write(original)
        if _:
            sys.exit("interrupted; header restored")

    signal.signal(signal.SIGINT, restore)
    signal.signal(signal.SIGTERM, restore)

    exe = os.path.join(a.build, "tests", a.target)
    test_cmd = [exe] + ([f"--test-case={a.filter}"] if a.filter else [])
    build_cmd = ["cmake", "--build", a.build, "--target", a.target, "-j", a.jobs]

    code, out = run(build_cmd, a.timeout)
    if code != 0:
        sys.exit("the unmutated build fails:\n" + out[-2000:])
    code, out = run(test_cmd, a.test_timeout)
    if code != 0:
        sys.exit("the tests fail (or time out) before any mutation:\n" + out[-2000:])

    results = []
    try:
        for k, (n, new_line, what) in enumerate(mutants(lines, first, last)):
            if a.max and k >= a.max:
                break
            mutated = lines[:n] + [new_line] + lines[n + 1:]
            with open(a.header, "w") as f:
                f.write("\n".join(mutated))
            code, _ = run(build_cmd, a.timeout)
            if code != 0:
                verdict = "does not compile"
            else:
                verdict = test_verdict(run(test_cmd, a.test_timeout)[0])
            restore()
            results.append((n + 1, what, verdict, new_line.strip()))
            print(f"{a.header}:{n + 1}: {what}: {verdict}", flush=True)
    finally:
        restore()
        run(build_cmd, a.timeout)  # leave the build matching the restored header

    survived = [r for r in results if r[2] == "SURVIVED"]
    valid = [r for r in results if r[2] != "does not compile"]
    print(f"\n{len(valid)} compiling mutants, {len(valid) - len(survived)} killed, {len(survived)} survived")
    for line, what, _, text in survived:
        print(f"  survived {a.header}:{line} ({what}): {text}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
