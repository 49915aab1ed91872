"""Command-line entry points: the ``rtml`` CLI and what MLproject's entry points call."""
