"""The kinds of error the core raises; each message is one sentence a person can act on."""

from __future__ import annotations

from collections.abc import Sequence


class IndexUnavailable(RuntimeError):
    """The index is missing or unusable; the message is one sentence a person can act on."""


class StoreError(IndexUnavailable):
    """The vector store cannot be opened or queried; the message says why (HTTP 503, exit 3)."""


class PortUnavailable(RuntimeError):
    """The web server cannot listen on its address; the message says what to change."""


class QuestionError(ValueError):
    """A question that cannot be asked; the message says what to fix."""


class UnknownDocument(LookupError):
    """A document id the serving build does not hold."""


class FeedbackError(ValueError):
    """A judgement that cannot be stored as sent; the message says what to fix."""


class CorpusFileError(ValueError):
    """A corpus file that cannot be used, with the reason a person should read."""


class EncoderUnavailable(RuntimeError):
    """The ONNX model cannot be exported or loaded; the message says why."""


class FeedbackUnavailable(RuntimeError):
    """The feedback database cannot be written or read; the message says why."""


class QuestionSetError(ValueError):
    """Question files that break the format; `problems` holds one `file:line: reason` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)
