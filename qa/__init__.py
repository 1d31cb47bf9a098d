"""qa: answers questions over a news corpus with exact, verified citations."""

__version__ = "0.1.0"
