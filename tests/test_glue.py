"""helpers.glue: myst-nb's glue in the book, a visible stand-in where myst-nb is missing."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from helpers import glue as glue_module
from helpers import plots, results


@pytest.fixture
def without_myst_nb(monkeypatch):
    """As on Colab with the runtime package only: myst_nb cannot be imported."""
    import builtins

    real_import = builtins.__import__

    def refuse_myst_nb(name, *args, **kwargs):
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ImportError("No module named 'myst_nb'")
        return real_import(name, *args, **kwargs)

    glue_module.myst_nb_glue.cache_clear()
    monkeypatch.setattr(builtins, "__import__", refuse_myst_nb)
    yield
    glue_module.myst_nb_glue.cache_clear()


def test_without_myst_nb_the_values_are_shown(without_myst_nb, capsys):
    assert glue_module.myst_nb_glue() is None
    glue_module.glue("speedup", 3.25, display=False)
    glue_module.glue("verdict", "faster", display=False)
    results.record("final_loss", 0.125)
    out = capsys.readouterr().out
    assert "speedup = 3.25" in out
    assert "verdict = faster" in out
    assert "final_loss = 0.125" in out


def test_without_myst_nb_a_glued_figure_is_shown(without_myst_nb, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    fig, ax = plots.figure()
    ax.plot([0, 1], [1, 0])
    plots.glue_figure("a_line", fig)
    assert shown == [fig]
    assert not plt.fignum_exists(fig.number)  # and closed, as with myst-nb


def test_with_myst_nb_the_value_is_glued_not_printed(capsys):
    glue_module.myst_nb_glue.cache_clear()
    from myst_nb import glue as real_glue

    assert glue_module.myst_nb_glue() is real_glue
    glue_module.glue("speedup", 3.25, display=False)
    assert "speedup = 3.25" not in capsys.readouterr().out
