"""One exception hierarchy, each class mapped to a CLI exit code.

Every error carries a one-line ``message`` (what went wrong, and where) and a ``hint``
(what the user can do about it). The CLI prints both and exits with ``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "OnnxBridgeError",
    "UsageError",
    "InputError",
    "UnsafeInputError",
    "ProviderError",
    "ConversionError",
    "ParityError",
    "EXIT_OK",
    "EXIT_PARITY",
    "EXIT_USAGE",
    "EXIT_CONVERSION",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
]

EXIT_OK = 0
EXIT_PARITY = 1
EXIT_USAGE = 2
EXIT_CONVERSION = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

# every code the CLI exits with, and what it means (docs/cli.md, README.md and --help list the same; tested)
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_PARITY: "parity failed",
    EXIT_USAGE: "bad input or usage",
    EXIT_CONVERSION: "conversion failed",
    EXIT_INTERNAL: "internal error (a bug)",
    EXIT_INTERRUPTED: "interrupted",
}


class OnnxBridgeError(Exception):
    """Root of every error onnxbridge raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(OnnxBridgeError):
    """A bad flag, SOURCE string or argument combination (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(OnnxBridgeError):
    """An input file or folder that is missing, unreadable or malformed (exit 2)."""

    exit_code = EXIT_USAGE


class UnsafeInputError(InputError):
    """An input that would run code or escape its folder if loaded (exit 2)."""


class ProviderError(OnnxBridgeError):
    """An execution provider that was asked for but does not really run (exit 2)."""

    exit_code = EXIT_USAGE


class ConversionError(OnnxBridgeError):
    """No route could export the model (exit 3)."""

    exit_code = EXIT_CONVERSION

    def __init__(self, message: str, hint: str | None = None, attempts: tuple = ()) -> None:
        super().__init__(message, hint)
        self.attempts = attempts


class ParityError(OnnxBridgeError):
    """Parity failed (exit 1). onnxbridge's verbs never raise it: a failed check is a result
    (``report.passed is False``), which the CLI writes and exits 1 on. Kept so that code which
    catches it, or raises it from ``report.passed``, still imports."""

    exit_code = EXIT_PARITY
