"""``glue``: hand a value computed in a notebook to the prose of its page.

    from helpers.glue import glue
    glue("speedup", 3.2, display=False)     # the page cites it as {glue:text}`speedup:.1f`

In the book's build this is myst-nb's ``glue``. myst-nb belongs to the book-building stack
(it pulls in Sphinx), which the runtime package does not install: on Colab, or wherever
``pip install dl-notes-helpers`` ran without the ``book`` extra, myst-nb is missing. There a
notebook must still run and still show its numbers, because the ``{glue:...}`` roles of its
Markdown cells stay unrendered text. So without myst-nb, ``glue`` shows the value in the
cell's output instead: ``name = value`` for a number or a string, the object itself (a
figure, a table) otherwise, whether or not ``display`` asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from numbers import Number
from typing import Any


@cache
def myst_nb_glue() -> Callable[..., None] | None:
    """myst-nb's ``glue``, or None where myst-nb is not installed (looked up once)."""
    try:
        from myst_nb import glue  # imported late: importing myst_nb pulls in Sphinx
    except ImportError:
        return None
    return glue


def glue(name: str, value: Any, display: bool = True) -> None:
    """Glue ``value`` under ``name`` for the page (myst-nb), or show it (without myst-nb)."""
    myst = myst_nb_glue()
    if myst is not None:
        myst(name, value, display=display)
        return
    from IPython.display import display as show

    if isinstance(value, (str, Number)):
        print(f"{name} = {value}")
    else:
        show(value)
