"""The rendered book: ``python -m chapters.render --out site/`` executes every chapter as a
notebook in each language (jupytext reads the percent files, nbclient runs them) and writes the
executed notebooks and a static HTML site (nbconvert). See docs/book.md and chapters/render/__main__.py.

This package's ``__init__`` imports nothing heavy: the runner (``python -m chapters``) uses
``chapters.render.cells`` for chapter titles and must start without torch or jupytext.
"""
