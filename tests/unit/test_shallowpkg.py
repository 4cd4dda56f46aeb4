"""Shallow packages: submodules without the package's __init__, until a name needs it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest

from servin import shallowpkg


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``heavy`` whose __init__ counts its runs and imports ``heavy.extra``."""
    root = tmp_path / "heavy"
    root.mkdir()
    (root / "__init__.py").write_text(textwrap.dedent('''\
        __version__ = "1.2.3"
        import builtins
        builtins.heavy_init_runs = getattr(builtins, "heavy_init_runs", 0) + 1
        from heavy.extra import Extra
        '''))
    (root / "light.py").write_text("from heavy import __version__\nVERSION = __version__\n")
    (root / "extra.py").write_text("class Extra:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.util.find_spec("heavy")
    for name in [name for name in sys.modules if name == "heavy" or name.startswith("heavy.")]:
        del sys.modules[name]
    import builtins
    vars(builtins).pop("heavy_init_runs", None)


def init_runs() -> int:
    import builtins
    return getattr(builtins, "heavy_init_runs", 0)


def test_a_submodule_loads_without_the_init(package):
    shallowpkg.install(("heavy",))
    import heavy.light
    assert heavy.light.VERSION == "1.2.3"  # the literal version, without the __init__
    assert "heavy.extra" not in sys.modules
    from heavy import light  # a submodule by name does not need the __init__ either
    assert light is heavy.light
    assert init_runs() == 0


def test_a_name_of_the_init_runs_it_once(package):
    shallowpkg.install(("heavy",))
    import heavy
    from heavy import Extra
    assert Extra is sys.modules["heavy.extra"].Extra
    assert heavy.Extra is Extra
    assert init_runs() == 1
    with pytest.raises(AttributeError):
        heavy.missing


def test_a_package_imported_already_is_left_alone(package):
    import heavy
    shallowpkg.install(("heavy",))
    assert sys.modules["heavy"] is heavy and init_runs() == 1

