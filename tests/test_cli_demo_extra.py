"""``lossjax demo`` without the ``demo`` extra: a one-line install hint, not a traceback."""

import sys

import pytest

from lossjax import cli


@pytest.mark.parametrize("module", ["tqdm", "sklearn", "matplotlib"])
def test_demo_without_the_extra_prints_the_install_hint(module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    with pytest.raises(ImportError):
        __import__(module)
    assert cli.main(["demo", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "lossjax[demo]"' in err and module in err
