"""optax's and rlax's own tests on lossjax: ``python -m bench.compat``.

Runs every installed test file of ``tests/compat/table.py`` twice in a child pytest, once
as shipped (optax's own pass count) and once with lossjax's functions substituted for the
names of the table, and prints one Markdown row per file: test cases, passes on optax,
passes on lossjax, documented differences, known optimizer-side failures, failures that
optax's own run has too (the installed JAX fails them as shipped) and other failures (a
case skipped on lossjax that optax runs counts as a failure). ``--only losses
rlax`` runs some groups; ``--failures`` then lists the failing cases that are not
documented differences, grouped per file by error; ``--json PATH`` writes every outcome.
Not a timing benchmark: it reads outcomes, so the machine's load does not matter (the whole
run takes tens of CPU-minutes, the optimizer files most).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence

from tests.compat.run import KINDS, classify, matching, run_files
from tests.compat.table import DIFFERENCES, TEST_FILES


def run_file(path: str) -> dict:
    start = time.perf_counter()
    own = run_files([path], substitute=False)
    ours = run_files([path], substitute=True)
    kinds = {nodeid: classify(nodeid, outcome) for nodeid, outcome in ours.outcomes.items()}
    # A case skipped on lossjax that optax runs hides a difference: report it as open.
    for nodeid, kind in kinds.items():
        if kind == "skipped" and own.outcomes.get(nodeid) == "passed":
            kinds[nodeid] = classify(nodeid, "failed")
            ours.errors[nodeid] = "skipped on lossjax, run on optax"
        elif kind == "failed" and own.outcomes.get(nodeid) in ("failed", "error"):
            kinds[nodeid] = "optax-fails"  # this optax/JAX pair fails it as shipped too
    return {
        "file": path,
        "cases": len(ours.outcomes),
        "optax_passed": own.count("passed"),
        "counts": {k: sum(v == k for v in kinds.values()) for k in (*KINDS, "optax-fails")},
        "kinds": kinds,
        "errors": ours.errors,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(rows: Sequence[dict]) -> str:
    lines = ["| file | cases | pass on optax | pass on lossjax | documented difference "
             "| optimizer side (open) | fail on optax too | other failures |",
             "|---|---|---|---|---|---|---|---|"]
    totals = [0] * 7
    for row in rows:
        c = row["counts"]
        values = [row["cases"], row["optax_passed"], c["passed"], c["difference"],
                  c["optimizer-side"], c["optax-fails"], c["failed"]]
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        lines.append(f"| `{row['file']}` | " + " | ".join(map(str, values)) + " |")
    lines.append("| **total** | " + " | ".join(f"**{t}**" for t in totals) + " |")
    return "\n".join(lines)


def _error_kind(message: str) -> str:
    """The error without its numbers and traceback tail: cases failing alike group together."""
    first = message.split(" ---", 1)[0]
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", first)[:160]


def failure_report(rows: Sequence[dict]) -> str:
    """Every failing case that is not a documented difference, grouped per file by error."""
    lines = []
    for row in rows:
        groups: dict[tuple[str, str], list[str]] = {}
        for nodeid, kind in sorted(row["kinds"].items()):
            if kind in ("failed", "optimizer-side", "optax-fails"):
                key = (kind, _error_kind(row["errors"].get(nodeid, "")))
                groups.setdefault(key, []).append(nodeid.split("::", 1)[1])
        stale = [nodeid.split("::", 1)[1] for nodeid, kind in sorted(row["kinds"].items())
                 if kind == "passed" and matching(nodeid, DIFFERENCES)]
        if groups or stale:
            lines.append(f"\n### `{row['file']}`")
        if stale:
            lines.append(f"- {len(stale)} documented differences pass now (remove them): "
                         + ", ".join(f"`{c}`" for c in stale))
        for (kind, error), cases in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(f"`{c}`" for c in cases[:3]) + (" ..." if len(cases) > 3 else "")
            lines.append(f"- {len(cases)} [{kind}] {error}: {shown}")
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
        print(failure_report(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
