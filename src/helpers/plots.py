"""How the book's figures are sized and shown.

A figure is drawn in a code cell and shown elsewhere on the page, in a numbered, captioned
``{glue:figure}`` block of the prose (see README, "Adding a chapter")::

    fig, (ax1, ax2) = plots.figure(ncols=2)
    ...
    plots.glue_figure("fd_steps", fig)

Sizes: the text column of a page is about 784 px wide at a 1400 px window, and the inline
backend saves figures at 100 dpi, so a figure at most :data:`COLUMN_INCHES` wide is shown at
its own size, and matplotlib's 10-point labels are about 14 px on screen. A wider figure
would be shrunk to the column, and its labels with it (three panels 15 inches wide came out
at 7 px). :func:`figure` therefore takes its width from the column and allows at most three
panels across.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

#: The widest figure that the page shows at its own size (784 px at 100 dpi, less a margin).
COLUMN_INCHES = 7.5
#: A panel's height, in inches, when none is given.
PANEL_HEIGHT = 3.2
MAX_PANELS_ACROSS = 3


def figure(ncols: int = 1, nrows: int = 1, *, height: float | None = None,
           width: float | None = None, **subplots: Any) -> tuple[plt.Figure, Any]:
    """``plt.subplots`` sized for the column: full width, or ``width`` inches if narrower.

    ``height`` is the height of the whole figure (default: :data:`PANEL_HEIGHT` per row).
    """
    if ncols > MAX_PANELS_ACROSS:
        raise ValueError(f"{ncols} panels across would be unreadable at the column width; "
                         f"use at most {MAX_PANELS_ACROSS} (more rows instead)")
    width = COLUMN_INCHES if width is None else width
    if width > COLUMN_INCHES:
        raise ValueError(f"a figure {width} in wide would be shrunk to the column "
                         f"({COLUMN_INCHES} in): draw it narrower")
    height = PANEL_HEIGHT * nrows if height is None else height
    subplots.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **subplots)


def glue_figure(name: str, fig: plt.Figure) -> None:
    """Glue ``fig`` under ``name`` for a ``{glue:figure}`` block, and close it.

    Closing matters: the inline backend would otherwise draw the figure a second time, without
    a caption, at the end of the cell that made it.
    """
    from helpers.glue import glue

    glue(name, fig, display=False)
    plt.close(fig)
