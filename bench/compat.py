"""optax's and rlax's own tests on lossjax: ``python -m bench.compat``.

Runs every installed test file of ``tests/compat/table.py`` twice in a child pytest, once
as shipped (optax's own pass count) and once with lossjax's functions substituted for the
names of the table, and prints one Markdown row per file: test cases, passes on optax,
passes on lossjax, documented differences, known optimizer-side failures and other
failures. ``--only losses rlax`` runs some groups; ``--failures`` lists each failing case
with its error; ``--json PATH`` writes every outcome. Not a timing benchmark: it reads
outcomes, so the machine's load does not matter (it takes several CPU-minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from tests.compat.run import KINDS, classify, run_files
from tests.compat.table import TEST_FILES


def run_file(path: str) -> dict:
    start = time.perf_counter()
    own = run_files([path], substitute=False)
    ours = run_files([path], substitute=True)
    kinds = {nodeid: classify(nodeid, outcome) for nodeid, outcome in ours.outcomes.items()}
    return {
        "file": path,
        "cases": len(ours.outcomes),
        "optax_passed": own.count("passed"),
        "counts": {k: sum(v == k for v in kinds.values()) for k in KINDS},
        "kinds": kinds,
        "errors": ours.errors,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(rows: Sequence[dict]) -> str:
    lines = ["| file | cases | pass on optax | pass on lossjax | documented difference "
             "| optimizer side (open) | other failures |",
             "|---|---|---|---|---|---|---|"]
    totals = [0] * 6
    for row in rows:
        c = row["counts"]
        values = [row["cases"], row["optax_passed"], c["passed"], c["difference"],
                  c["optimizer-side"], c["failed"]]
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        lines.append(f"| `{row['file']}` | " + " | ".join(map(str, values)) + " |")
    lines.append("| **total** | " + " | ".join(f"**{t}**" for t in totals) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(TEST_FILES), default=None)
    parser.add_argument("--failures", action="store_true",
                        help="list every failing case that is not a documented difference")
    parser.add_argument("--json", default=None, help="write every outcome to this file")
    args = parser.parse_args(argv)
    rows = []
    for group in args.only or TEST_FILES:
        for path in TEST_FILES[group]:
            rows.append(run_file(path))
            print(f"{path}: {rows[-1]['counts']} ({rows[-1]['seconds']} s)", file=sys.stderr,
                  flush=True)
    print(table(rows))
    if args.failures:
        for row in rows:
            for nodeid, kind in sorted(row["kinds"].items()):
                if kind in ("failed", "optimizer-side"):
                    print(f"- [{kind}] `{nodeid}`: {row['errors'].get(nodeid, '')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
