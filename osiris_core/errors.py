"""One small error tree for every part of Osiris.

Each class names one thing that can go wrong and carries a stable ``code`` so that the
verifier, the server's JSON errors and the CLI's exit codes all agree on it. Each class also
carries the two numbers a failure mode needs at the edges (docs/internals.md):

- ``http_status``: what the server answers when the error escapes a handler. Only the
  client-input classes (``InputError`` and the parsers' errors: canonical JSON, schema, keys,
  notes, proofs) answer 4xx with their message; anything else that escapes is a bug or a server
  fault and answers ``500 E_INTERNAL`` with a generic message (the internal message is logged,
  never sent).
- ``exit_code``: what every CLI (``osiris``, ``osiris-agent``, ``osiris-server``) exits with when
  the error reaches its command group (DESIGN §4.2, ``ExitCode``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of all three CLIs (DESIGN §4.2; docs/console.md lists them)."""

    OK = 0
    BAD = 1  # the thing checked is bad (verification failed, drift found, queue not empty)
    USAGE = 2  # usage or input error (bad arguments, config, data dir, refused input)
    UNREACHABLE = 3  # the server could not be reached (or answered 5xx)
    AUTH = 4  # authentication refused (401/403: missing, wrong, revoked token or role)
    INTERNAL = 5  # an unexpected error inside Osiris (a bug); --debug / OSIRIS_DEBUG=1 shows it


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code a client gives an HTTP error status (the same table the server uses)."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status >= 500:
        return ExitCode.UNREACHABLE
    return ExitCode.USAGE


class OsirisError(Exception):
    """Base of every error Osiris raises on purpose.

    Raised as itself it is a fault of the side that raised it: exit 1 in a CLI, a generic 500
    if it escapes a server handler."""

    code = "E_OSIRIS"
    http_status = 500
    exit_code = ExitCode.BAD

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- failure modes


class InputError(OsirisError):
    """Bad input from whoever called us: arguments, a request body, a file given to read."""

    code = "E_INPUT"
    http_status = 400
    exit_code = ExitCode.USAGE


class NotFoundError(InputError):
    code = "E_NOT_FOUND"
    http_status = 404


class ConflictError(InputError):
    code = "E_CONFLICT"
    http_status = 409


class AuthRefusedError(OsirisError):
    """Authentication or authorisation refused (a missing, wrong or revoked credential)."""

    code = "E_AUTH"
    http_status = 401
    exit_code = ExitCode.AUTH


class UnreachableError(OsirisError):
    """The other side could not be reached, timed out, or failed (5xx)."""

    code = "E_UNREACHABLE"
    http_status = 503
    exit_code = ExitCode.UNREACHABLE


class CheckFailed(OsirisError):
    """The thing checked is bad: a verification, a comparison, a policy refused it."""

    code = "E_CHECK"
    http_status = 400
    exit_code = ExitCode.BAD


class InternalError(OsirisError):
    """A state that should not happen; never shown to a remote caller."""

    code = "E_INTERNAL"
    http_status = 500
    exit_code = ExitCode.INTERNAL


# ---------------------------------------------------------------- parsers and checkers


class CanonicalError(InputError, ValueError):
    """Bytes that are not strict JSON (E_PARSE) or not in canonical form (E_NONCANONICAL)."""

    code = "E_PARSE"


class SchemaError(InputError, ValueError):
    """A well-formed document whose fields break the schema."""

    code = "E_SCHEMA"


class SignatureError(CheckFailed):
    """A signature that does not verify, or one by a key we do not know."""

    code = "E_SIG"


class KeyFormatError(InputError, ValueError):
    """A key string or key file that cannot be parsed."""

    code = "E_KEY"


class KeyPermissionError(OsirisError):
    """A private key file that other users could read or change (a local fault: exit 2)."""

    code = "E_KEY_PERMS"
    exit_code = ExitCode.USAGE


class NoteError(InputError, ValueError):
    """A signed note that is malformed or carries no valid known signature."""

    code = "E_NOTE"


class ProofError(InputError, ValueError):
    """A Merkle proof that is malformed or does not verify."""

    code = "E_PROOF"


class OrderError(InputError):
    """An order that cannot be built or checked."""

    code = "E_ORDER"
