"""One small error tree for every part of Osiris.

Each class names one thing that can go wrong and carries a stable ``code`` so that
the verifier, the server's JSON errors and the CLI's exit codes all agree on it.
"""

from __future__ import annotations


class OsirisError(Exception):
    """Base of every error Osiris raises on purpose."""

    code = "E_OSIRIS"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class CanonicalError(OsirisError, ValueError):
    """Bytes that are not strict JSON (E_PARSE) or not in canonical form (E_NONCANONICAL)."""

    code = "E_PARSE"


class SchemaError(OsirisError, ValueError):
    """A well-formed document whose fields break the schema."""

    code = "E_SCHEMA"


class SignatureError(OsirisError):
    """A signature that does not verify, or one by a key we do not know."""

    code = "E_SIG"


class KeyFormatError(OsirisError, ValueError):
    """A key string or key file that cannot be parsed."""

    code = "E_KEY"


class KeyPermissionError(OsirisError):
    """A private key file that other users could read or change."""

    code = "E_KEY_PERMS"


class NoteError(OsirisError, ValueError):
    """A signed note that is malformed or carries no valid known signature."""

    code = "E_NOTE"


class ProofError(OsirisError, ValueError):
    """A Merkle proof that is malformed or does not verify."""

    code = "E_PROOF"


class OrderError(OsirisError):
    """An order that cannot be built or checked."""

    code = "E_ORDER"
