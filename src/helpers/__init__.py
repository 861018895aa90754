"""Infrastructure for the lecture notebooks: what the book needs but no chapter teaches.

Modules: `profiles` (smoke / cpu / gpu scales, seeding, device), `data` (datasets, offline
mirror, downloads with verification), `results` (headline numbers and reference
comparisons), `run` (the papermill runner with provenance), `pages` (the Status and
Reproduction pages), `integrity` (what is stale, unsynced or missing), `book` (the HTML
build with offline MathJax), `gradcheck` (finite-difference gradient checks) and `timing`
(measurements and their ratios).
"""

__version__ = "0.1.0"

import warnings as _warnings

# tqdm.auto draws a widget bar when ipywidgets is installed and otherwise falls back to the
# text bar with a TqdmWarning. The text bar is what the book wants (widget bars need
# JavaScript from a CDN to render in the static pages), so the warning is only noise.
_warnings.filterwarnings("ignore", message="IProgress not found")
