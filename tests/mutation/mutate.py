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
"""
import argparse
import os
import re
import signal
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("header")
    ap.add_argument("--target", required=True, help="test target to rebuild, e.g. test_metrics")
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
                code, _ = run(test_cmd, a.test_timeout)
                if code is None:
                    verdict = "killed (timed out)"
                elif code < 0:
                    verdict = f"killed (signal {-code})"
                else:
                    verdict = "killed" if code != 0 else "SURVIVED"
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
