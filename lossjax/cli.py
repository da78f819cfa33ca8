"""``lossjax`` command line: ``lossjax demo`` (the README's main job) and ``lossjax lr-find``.

``lossjax demo`` trains a small MLP on scikit-learn's handwritten digits (bundled with
scikit-learn: nothing is downloaded) with lossjax losses, optimizers and regularization,
prints per-epoch train/validation loss and accuracy, a table comparing the runs, and writes
a PNG of the loss curves.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence

_DESCRIPTION = """\
lossjax: losses, optimizers and regularization for JAX.

  lossjax demo      train a small MLP on scikit-learn's digits and compare optimizers
  lossjax lr-find   learning-rate range test on the same MLP; plots loss against rate

Run 'lossjax COMMAND --help' for a command's options.
"""

_DEMO_DESCRIPTION = """\
Train a small MLP (64 -> 128 -> 10, ReLU) on scikit-learn's digits (1797 8x8 images,
80/20 stratified train/validation split) with lossjax losses, optimizers and regularization.

By default it compares six runs with the same number of epochs: full-batch gradient
descent, mini-batch SGD with momentum 0.9, Adam, Adam with L2 and dropout, and two
optimizers whose learning rate is not tuned (schedule-free AdamW at its default rate,
Prodigy, which estimates its own), then prints a table and writes a PNG of the loss curves.
Pass --optimizer to train a single run.
"""

_LR_FIND_DESCRIPTION = """\
Learning-rate range test on the demo's digits MLP: train for --num-steps mini-batches while
the learning rate grows geometrically from --min-lr to --max-lr, stop early when the
smoothed loss diverges, print the rate each rule suggests (--method picks the one marked
as the suggestion: valley, steepest or minimum / 10) and write a PNG of the batch and
smoothed losses against the learning rate.
"""

_DEFAULT_L2 = 1e-4
_DEFAULT_DROPOUT = 0.2


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    from lossjax.examples.digits import DEFAULT_LEARNING_RATES, LOSSES

    rates = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
    parser.add_argument(
        "--loss", choices=sorted(LOSSES), default="cross_entropy",
        help="training loss on the logits (default: %(default)s); validation loss uses the same")
    parser.add_argument(
        "--optimizer",
        choices=["all", "gd", "sgd", "adam", "schedule_free_adamw", "prodigy"], default="all",
        help="'gd' full-batch gradient descent, 'sgd' mini-batch SGD with momentum 0.9, "
             "'adam', 'schedule_free_adamw', 'prodigy'; 'all' (default) compares GD, SGD, "
             "Adam, Adam + L2 + dropout, schedule-free AdamW and Prodigy")
    parser.add_argument(
        "--learning-rate", type=_positive_float, default=None, metavar="LR",
        help=f"step size for every run (default: per optimizer: {rates})")
    parser.add_argument(
        "--epochs", type=_positive_int, default=20,
        help="passes over the training set per run (default: %(default)s)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=64,
        help="mini-batch size for SGD and Adam; GD always uses the full training set "
             "(default: %(default)s)")
    parser.add_argument(
        "--l2", type=_non_negative_float, default=None,
        help=f"L2 strength: adds l2 * 0.5 * sum(W**2) over weight matrices to the loss "
             f"(default: {_DEFAULT_L2:g} for the regularized run of --optimizer all, 0 "
             "otherwise)")
    parser.add_argument(
        "--dropout", type=_rate, default=None,
        help=f"dropout rate on the hidden layer during training, in [0, 1) (default: "
             f"{_DEFAULT_DROPOUT:g} for the regularized run of --optimizer all, 0 otherwise)")
    parser.add_argument(
        "--seed", type=int, default=0,
        help="seed of the data split, initialisation, shuffling and dropout "
             "(default: %(default)s)")
    parser.add_argument(
        "--output", default=os.path.join("lossjax-demo-out", "loss_curves.png"), metavar="PATH",
        help="where to write the PNG of the loss curves; its folder is created "
             "(default: %(default)s)")
    parser.add_argument(
        "--no-progress", action="store_true",
        help="do not draw progress bars (per-epoch lines are still printed)")


def _configs(args: argparse.Namespace):
    from lossjax.examples.digits import Config

    common = dict(loss=args.loss, learning_rate=args.learning_rate, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed)
    if args.optimizer != "all":
        return [Config(optimizer=args.optimizer, l2=args.l2 or 0.0,
                       dropout=args.dropout or 0.0, **common)]
    l2 = _DEFAULT_L2 if args.l2 is None else args.l2
    rate = _DEFAULT_DROPOUT if args.dropout is None else args.dropout
    configs = [Config(optimizer=name, **common) for name in ("gd", "sgd", "adam")]
    if l2 or rate:
        configs.append(Config(optimizer="adam", l2=l2, dropout=rate, **common))
    untuned = dict(common, learning_rate=None)
    configs += [Config(optimizer=name, **untuned) for name in ("schedule_free_adamw", "prodigy")]
    return configs


def _print_table(histories) -> None:
    header = ["run", "lr", "steps", "train loss", "val loss", "train acc", "val acc", "best val",
              "time"]
    rows = [
        [h.config.label, f"{h.config.lr:g}", str(h.steps), f"{h.train_loss[-1]:.4f}",
         f"{h.val_loss[-1]:.4f}", f"{h.train_accuracy[-1]:.2%}", f"{h.val_accuracy[-1]:.2%}",
         f"{max(h.val_accuracy):.2%}", f"{h.seconds:.1f}s"]
        for h in histories
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


_DEMO_EXTRA = ("matplotlib", "sklearn", "tqdm")


def _missing_demo_extra() -> list[str]:
    """The modules of the ``demo`` extra that are not installed."""
    return [name for name in _DEMO_EXTRA if importlib.util.find_spec(name) is None]


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    missing = _missing_demo_extra()
    if missing:
        print(f"lossjax demo needs {', '.join(missing)}: pip install \"lossjax[demo]\"",
              file=sys.stderr)
        return 1
    from tqdm.auto import tqdm

    from lossjax.examples.digits import load_data, plot_histories, train

    data = load_data(seed=args.seed)
    n_train = len(data.x_train)
    if args.batch_size > n_train:
        parser.error(f"argument --batch-size: must be at most the {n_train} training "
                     f"examples, got {args.batch_size}")
    print(f"digits: {n_train} train / {len(data.x_val)} validation examples, 64 features, "
          f"10 classes; loss {args.loss}")

    def progress(items, description):
        return tqdm(items, desc=description, leave=False, unit="batch",
                    disable=args.no_progress, file=sys.stdout)

    def report(m):
        tqdm.write(f"  epoch {m.epoch:3d}  train loss {m.train_loss:.4f} acc "
                   f"{m.train_accuracy:6.2%}  |  val loss {m.val_loss:.4f} acc "
                   f"{m.val_accuracy:6.2%}", file=sys.stdout)

    histories = []
    for config in _configs(args):
        print(f"\n{config.label}: lr {config.lr:g}, l2 {config.l2:g}, dropout {config.dropout:g}")
        histories.append(train(config, data, progress=progress, on_epoch=report))
    _print_table(histories)
    directory = os.path.dirname(args.output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    path = plot_histories(histories, args.output)
    print(f"\nloss curves written to {os.path.abspath(path)}")
    return 0


def _add_lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                        help="'sgd' (momentum 0.9) or 'adam' (default: %(default)s)")
    parser.add_argument("--min-lr", type=_positive_float, default=1e-5, metavar="LR",
                        help="first learning rate (default: %(default)g)")
    parser.add_argument("--max-lr", type=_positive_float, default=10.0, metavar="LR",
                        help="last learning rate (default: %(default)g)")
    parser.add_argument("--num-steps", type=_positive_int, default=100,
                        help="steps (rates tried) in the sweep (default: %(default)s)")
    parser.add_argument("--method", choices=["valley", "steepest", "minimum"],
                        default="valley",
                        help="the rule that picks the suggested rate (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=64,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, initialisation and shuffling "
                             "(default: %(default)s)")
    parser.add_argument(
        "--output", default=os.path.join("lossjax-demo-out", "lr_find.png"), metavar="PATH",
        help="where to write the PNG; its folder is created (default: %(default)s)")


def _lr_find(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from lossjax.examples.digits import load_data, lr_range_test

    if not args.max_lr > args.min_lr:
        parser.error(f"argument --max-lr: must be greater than --min-lr ({args.min_lr:g}), "
                     f"got {args.max_lr:g}")
    if args.num_steps < 2:
        parser.error("argument --num-steps: must be at least 2")
    data = load_data(seed=args.seed)
    if args.batch_size > len(data.x_train):
        parser.error(f"argument --batch-size: must be at most the {len(data.x_train)} "
                     f"training examples, got {args.batch_size}")
    result = lr_range_test(data, optimizer=args.optimizer, batch_size=args.batch_size,
                           min_lr=args.min_lr, max_lr=args.max_lr, num_steps=args.num_steps,
                           method=args.method, seed=args.seed)
    ended = ("stopped early: the loss diverged" if result.diverged
             else "reached --max-lr without diverging")
    print(f"{args.optimizer}: swept the learning rate from {args.min_lr:g} to "
          f"{result.learning_rates[-1]:.3g} in {len(result.learning_rates)} steps ({ended})")
    for name, rate in result.suggestions.items():
        print(f"  rule {name:<9} -> {rate:.3g}")
    print(f"suggested learning rate: {result.suggestion:.3g} (rule: {result.method})")
    directory = os.path.dirname(args.output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    result.plot(path=args.output)
    print(f"plot written to {os.path.abspath(args.output)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lossjax`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="lossjax", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="train an MLP on the digits dataset and compare optimizers",
        description=_DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_demo_arguments(demo)
    lr_find = commands.add_parser(
        "lr-find", help="learning-rate range test on the demo's MLP; plots loss vs rate",
        description=_LR_FIND_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_lr_find_arguments(lr_find)
    args = parser.parse_args(argv)
    if args.command == "lr-find":
        return _lr_find(args, lr_find)
    return _demo(args, demo)


if __name__ == "__main__":
    sys.exit(main())
