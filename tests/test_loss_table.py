"""The README's loss table lists every lossjax loss, and its optax column names real functions."""

import pathlib
import re

import optax

import lossjax
from lossjax import losses
from tests.losses._registry import EXEMPT

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _table_rows() -> list[list[str]]:
    lines = README.read_text().splitlines()
    start = lines.index("<!-- loss-table -->") + 3  # skip the marker, header and rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith("`"):
            rows.append(cells)
    return rows


def test_every_loss_is_in_the_table_once():
    names = [re.fullmatch(r"`(\w+)`", row[0]).group(1) for row in _table_rows()]
    assert len(names) == len(set(names))
    # Every loss of the registry is in the table; exempt public names may be too (the RL
    # return and advantage estimators have rows next to the RL losses), nothing else.
    expected = set(losses.__all__) - set(EXEMPT)  # the registry's non-loss names
    assert expected <= set(names) <= set(losses.__all__), (
        sorted(expected - set(names)), sorted(set(names) - set(losses.__all__)))
    assert all(callable(getattr(lossjax, n)) for n in names)


def test_optax_column_names_exist():
    for row in _table_rows():
        for name in re.findall(r"`(\w+)", row[1]):
            assert hasattr(optax.losses, name), (row[0], name)
