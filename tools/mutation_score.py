"""Mutation score per module from mutmut's results (``mutants/**/*.meta``), as ``make mutation`` prints it.

Killed, timed-out and type-check-caught mutants count as detected; "no tests" counts as survived (nothing
would notice the change); skipped ones are left out. ``--min N`` exits 1 when a module scores below N%.
``--survivors`` lists each surviving mutant's name, for ``mutmut show NAME``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=0.0, help="fail when a module scores below this percentage")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args()
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutation`", file=sys.stderr)
        return 1
    rows, survivors, below = [], [], []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to("mutants")).removesuffix(".meta")
        statuses = Counter(status_by_exit_code[code] for code in codes.values())
        counted = sum(statuses.values()) - statuses["skipped"]
        detected = sum(statuses[s] for s in DETECTED)
        score = 100.0 * detected / counted if counted else 100.0
        rows.append((module, counted, detected, counted - detected, score))
        survivors += [key for key, code in codes.items() if status_by_exit_code[code] not in DETECTED | {"skipped"}]
        if score < args.min:
            below.append(module)
    width = max(len(r[0]) for r in rows)
    print(f"{'module':<{width}}  mutants  detected  survived   score")
    for module, counted, detected, survived, score in rows:
        print(f"{module:<{width}}  {counted:>7}  {detected:>8}  {survived:>8}  {score:>5.1f}%")
    total, found = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'all':<{width}}  {total:>7}  {found:>8}  {total - found:>8}  {100.0 * found / max(total, 1):>5.1f}%")
    if args.survivors:
        print("\nsurvivors (mutmut show NAME):")
        print("\n".join(f"  {name}" for name in sorted(survivors)))
    if below:
        print(f"\nbelow {args.min:.0f}%: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
