"""``lossjax`` command line: ``lossjax demo`` (the README's main job)."""

from __future__ import annotations

import argparse
import sys


def _demo(_: argparse.Namespace) -> int:
    import jax.numpy as jnp

    import lossjax

    predictions = jnp.array([0.8, 2.1, 3.2])
    targets = jnp.array([1.0, 2.0, 3.0])
    print("textbook example: predictions", predictions.tolist(), "targets", targets.tolist())
    for name in ("mse", "mae", "huber", "smooth_l1", "log_cosh"):
        value = getattr(lossjax, name)(predictions, targets)
        print(f"  {name:10s} {float(value):.6f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossjax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the demo").set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
