"""Code the lecture notes teach, saved for the sections and chapters that build on it.

Each section of a chapter is a notebook that runs on its own. When a later section needs a
function that an earlier one taught (the mini CNN of chapter 1, say), it imports it from
here instead of repeating it: ``from helpers.lessons.backprop import cnn_grad``. The modules
of this package are generated, never edited: ``python -m helpers.savecells`` copies every
code cell tagged ``save`` in ``notebooks/NN_chapter/*.py``, in section order, into
``helpers/lessons/<chapter>.py`` (``NN_`` dropped), and the integrity check fails when a
module differs from its cells. The notebook stays the one home of the code: the reader sees
it where it is taught.
"""
