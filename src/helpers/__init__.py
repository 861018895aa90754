"""Infrastructure for the lecture notebooks: what the book needs but no chapter teaches.

Modules: `profiles` (smoke / cpu / gpu scales, seeding, device), `data` (datasets, offline
mirror, downloads with verification), `results` (headline numbers and reference
comparisons), `run` (the papermill runner with provenance), `pages` (the Status and
Reproduction pages).
"""

__version__ = "0.1.0"
