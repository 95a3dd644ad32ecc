"""Build student versions of the chapters and grade them (nbgrader-style markers)."""
