"""Pages fragments made from the repository at build time, into ``docs/_generated/``.

The README stays the one source of the install lines, the ten-line example, the loss
contract, the name tables and the sharding guide; the notebooks are copied from
``notebooks/`` (and executed by myst-nb); the benchmark chart is drawn from the ratio
columns of ``bench/README.md``.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil

LOSS_TABLE_MARK = "<!-- loss-table -->"


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def readme_section(readme: str, title: str) -> str:
    """The body of the README's ``## <title>`` section (without its heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no '## {title}' section, which the docs include")
    return match.group(1).strip() + "\n"


def loss_contract(readme: str) -> str:
    """The README's ``### Loss contract`` subsection (without its heading): the one copy of
    the contract, which the Conventions page includes."""
    match = re.search(r"^### Loss contract\n(.*?)(?=^#{1,3} |^<!-- )", readme, re.M | re.S)
    if match is None:
        raise ValueError("README.md has no '### Loss contract' subsection, which the docs "
                         "include")
    return match.group(1).strip() + "\n"


def loss_table(readme: str) -> str:
    """The Markdown table that follows the README's loss-table marker."""
    start = readme.find(LOSS_TABLE_MARK)
    if start < 0:
        raise ValueError(f"README.md has no {LOSS_TABLE_MARK} marker, which the docs include")
    lines = readme[start + len(LOSS_TABLE_MARK) :].strip().splitlines()
    return "\n".join(_take_while(lines, lambda line: line.startswith("|"))) + "\n"


def _take_while(items, keep):
    for item in items:
        if not keep(item):
            return
        yield item


def bench_ratios(bench_readme: str) -> list[tuple[str, str, float]]:
    """``(section, case, ratio)`` for every row of a table with a ``ratio`` column."""
    rows = []
    section = ""
    lines = bench_readme.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("## "):
            section = re.sub(r"\s*\(.*\)$", "", line[3:]).strip()
        if not line.startswith("|") or index + 1 >= len(lines):
            continue
        header = [cell.strip() for cell in line.strip("|").split("|")]
        if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()):
            continue
        column = next((i for i, h in enumerate(header) if h in ("ratio", "time ratio")), None)
        if column is None:
            continue
        for row in _take_while(lines[index + 2 :], lambda r: r.startswith("|")):
            cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")]
            try:
                rows.append((section, cells[0], float(cells[column])))
            except (ValueError, IndexError):
                continue
    return rows


def draw_ratio_chart(rows: list[tuple[str, str, float]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{case}  ({section})" for section, case, _ in rows]
    ratios = [ratio for _, _, ratio in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    colors = ["tab:green" if r <= 1.0 else "tab:orange" for r in ratios]
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio, lossjax / reference (log scale; below 1 is faster)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def copy_notebooks(root: pathlib.Path, target: pathlib.Path) -> list[str]:
    """Copy every ``notebooks/*.ipynb`` into ``target`` (dropping ones no longer there)."""
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted((root / "notebooks").glob("*.ipynb"))
    names = {path.name for path in sources}
    for stale in target.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    for source in sources:
        copy = target / source.name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)
    return sorted(names)


def install_kernel(prefix: pathlib.Path) -> None:
    """A ``python3`` kernel spec for this interpreter, found first through JUPYTER_PATH, so
    the notebooks run in the environment that builds the docs (not a system-wide kernel)."""
    from ipykernel.kernelspec import install

    install(kernel_name="python3", prefix=str(prefix))
    data_dir = str(prefix / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [data_dir, os.environ.get("JUPYTER_PATH")])
    )


def write_all(docs: pathlib.Path, root: pathlib.Path) -> None:
    generated = docs / "_generated"
    readme = (root / "README.md").read_text()
    _write_if_changed(generated / "setup.md", readme_section(readme, "Set up"))
    _write_if_changed(generated / "ten_lines.md", readme_section(readme, "Ten lines"))
    _write_if_changed(generated / "many_devices.md", readme_section(readme, "Many devices"))
    _write_if_changed(generated / "loss_table.md", loss_table(readme))
    _write_if_changed(generated / "loss_contract.md", loss_contract(readme))
    bench_readme = (root / "bench" / "README.md").read_text()
    # The title line is the page's own heading in benchmarks.md.
    _write_if_changed(generated / "bench.md", bench_readme.split("\n", 1)[1])
    draw_ratio_chart(bench_ratios(bench_readme), generated / "bench_ratios.png")
    copy_notebooks(root, docs / "notebooks")
