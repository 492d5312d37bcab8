"""PHI scrubber for every piece of free text that leaves a host.

Evidence is kept for six years and shown to auditors, so raw command output must never carry a
patient's identifiers (lessons B4: the earlier product did not scrub raw output). This runs on every
bundle, so it is built from a few precompiled regexes and a cheap pre-filter: text with no ASCII
digit, no ``@`` and no ``Patient:`` label cannot hold any pattern below and is returned as is.

What is redacted, each replaced by ``[REDACTED:<kind>]``:
- ``email``: ``name@domain.tld`` (the TLD must be letters, so ``root@10.0.0.5`` is left alone);
- ``ssn``: ``123-45-6789``, ``123 45 6789`` (space form only when not part of a run of numbers,
  e.g. a port list), or 9 digits after an SSN label;
- ``mrn``: the id after a label (``MRN: 12345678``, ``MRN#A1234567``, ``medical record number
  1234567``); the label stays so the reader knows what was removed;
- ``dob``: a date after a label (``DOB: 01/02/1980``, ``date of birth 1980-01-02``,
  ``born 1/2/80``); bare dates and timestamps are not PHI-shaped on their own and pass;
- ``phone``: US numbers with separators: ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``,
  ``+1 555 123 4567``; all-space ``555 123 4567`` only after ``+1`` or a phone label, because
  three bare numbers are just as likely ports or counters;
- ``name``: capitalised words after ``Patient:`` / ``Patient name =`` (a colon or ``=`` is needed;
  a name in running prose cannot be told from any other word and is not caught here).

The one shape shared with clean text is a dotted ``[2-9]NN.NNN.NNNN`` (a phone, or a version
nobody uses); it is treated as a phone.

Deliberately *not* redacted (false positives would destroy evidence): hostnames, IPv4/IPv6,
versions such as ``10.0.19045``, GUIDs, hex digests, RFC 3339 timestamps, ``KB5034441``, ports,
paths. Every pattern is anchored by look-arounds so it cannot start or end inside a longer token.

``scrub`` is idempotent by construction: it repeats until nothing changes (each pass that changes
something removes digits, ``@`` signs or a labelled name, so this ends; clean text takes one pass).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["scrub", "scrub_obj", "redaction", "KINDS"]

KINDS = ("email", "ssn", "mrn", "dob", "phone", "name")


def redaction(kind: str) -> str:
    """The marker that replaces a value of ``kind``."""
    return f"[REDACTED:{kind}]"


_F = re.ASCII | re.IGNORECASE

# --- e-mail ---------------------------------------------------------------------------------
# The look-behind makes the local part start at the beginning of its run, so a long run of word
# characters without "@" costs O(n), not O(n^2).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])",
    _F,
)

# --- labelled identifiers (the label stays, the value goes) ----------------------------------
_SEP = r"[ \t]*(?:[:#=][ \t]*)?"  # "MRN: ", "MRN#", "mrn=", "MRN "

_MRN = re.compile(
    r"(?P<label>\b(?:MRN|MR\#|med(?:ical)?[ _-]?rec(?:ord)?s?[ _-]?"
    r"(?:number|num|nbr|no\.?|\#|id)?)" + _SEP + r")"
    r"(?P<value>[A-Z]{0,4}-?[0-9][A-Z0-9-]{2,24})(?![A-Z0-9])",
    _F,
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?:[0-9]{4}|[0-9]{2})"  # 01/02/1980, 1/2/80
    r"|[0-9]{4}[/.-][0-9]{1,2}[/.-][0-9]{1,2}"  # 1980-01-02
    r"|" + _MONTH + r"[ \t]+[0-9]{1,2}(?:st|nd|rd|th)?,?[ \t]+[0-9]{4}"  # January 2, 1980
    r"|[0-9]{1,2}(?:st|nd|rd|th)?[ \t]+" + _MONTH + r",?[ \t]+[0-9]{4}"  # 2 Jan 1980
    r"|[0-9]{8})"  # 19800102 (only ever matched after a label)
)
_DOB = re.compile(
    r"(?P<label>\b(?:DOB|D\.O\.B\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthday"
    r"|born(?:[ \t]+on)?)" + _SEP + r")"
    r"(?P<value>" + _DATE + r")(?![0-9])",
    _F,
)

_SSN_LABELLED = re.compile(
    r"(?P<label>\b(?:SSN|SS\#|social[ _-]?security(?:[ _-]?(?:number|num|no\.?|\#))?)"
    + _SEP
    + r")(?P<value>[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4})(?![0-9])",
    _F,
)

_PATIENT_NAME = re.compile(
    r"(?P<label>\b(?:patient(?:[ _-]?(?:full[ _-]?)?name)?|pt[ _-]?name)[ \t]*[:=][ \t]*)"
    r"(?P<value>(?-i:[A-Z][A-Za-z'.-]*(?:,?[ \t]+[A-Z][A-Za-z'.-]*){0,3}))",
    _F,
)

# --- bare SSNs and phone numbers ---------------------------------------------------------------
# Not glued to a word, a dash, a dot or a slash on either side: "1.123-45-6789" or
# "a123-45-6789" are parts of something else (versions, ids, paths).
_NB = r"(?<![A-Za-z0-9_./\\-])"
_NA = r"(?![A-Za-z0-9_/\\-]|\.[A-Za-z0-9])"

_SSN_DASH = re.compile(_NB + r"[0-9]{3}-[0-9]{2}-[0-9]{4}" + _NA, _F)
# Space form: also not next to another number ("ports 445 23 1433 8080" is a list, not an SSN).
_SSN_SPACE = re.compile(
    _NB + r"(?<![0-9][ ,])(?<![0-9], )[0-9]{3} [0-9]{2} [0-9]{4}" + _NA + r"(?![ ,][ ]?[0-9])", _F
)

_PHONE_SEPARATED = re.compile(
    r"(?<![A-Za-z0-9_./\\+-])"
    r"(?:\+?1[ .-]|\+?1(?=\())?"  # country code: "+1 ", "1-", "+1(" but not "1555"
    r"(?:"
    r"\([0-9]{3}\)[ .-]?[0-9]{3}[ .-][0-9]{4}"  # (555) 123-4567
    r"|[0-9]{3}-[0-9]{3}-[0-9]{4}"  # 555-123-4567
    r"|[2-9][0-9]{2}\.[0-9]{3}\.[0-9]{4}"  # 555.123.4567 (NANP area code: not 100.100.1000)
    r"|[0-9]{3} [0-9]{3}-[0-9]{4}"  # 555 123-4567
    r")" + _NA,
    _F,
)
_PHONE_SPACED = re.compile(
    r"(?:(?<![A-Za-z0-9_./\\+-])\+1[ ]?"
    r"|(?P<label>\b(?:phone|ph|tel|telephone|cell|mobile|fax|call|contact)\.?" + _SEP + r")"
    r"(?:\+?1[ ]?)?)"
    r"[0-9]{3} [0-9]{3} [0-9]{4}" + _NA,
    _F,
)
_PHONE_LABELLED_DIGITS = re.compile(
    r"(?P<label>\b(?:phone|ph|tel|telephone|cell|mobile|fax)\.?" + _SEP + r")"
    r"(?P<value>\+?1?[0-9]{10})(?![0-9])",
    _F,
)


def _keep_label(kind: str) -> Callable[[re.Match[str]], str]:
    token = redaction(kind)

    def repl(m: re.Match[str]) -> str:
        return m.group("label") + token

    return repl


def _label_or_plain(kind: str) -> Callable[[re.Match[str]], str]:
    token = redaction(kind)

    def repl(m: re.Match[str]) -> str:
        return (m.group("label") or "") + token

    return repl


# Order matters: e-mail first (addresses may hold digits), labelled forms before bare ones.
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_EMAIL, redaction("email")),
    (_PATIENT_NAME, _keep_label("name")),
    (_SSN_LABELLED, _keep_label("ssn")),
    (_MRN, _keep_label("mrn")),
    (_DOB, _keep_label("dob")),
    (_SSN_DASH, redaction("ssn")),
    (_SSN_SPACE, redaction("ssn")),
    (_PHONE_LABELLED_DIGITS, _keep_label("phone")),
    (_PHONE_SPACED, _label_or_plain("phone")),
    (_PHONE_SEPARATED, redaction("phone")),
)

_HAS_CANDIDATE = re.compile(r"[0-9@]")
_MAX_PASSES = 8  # each pass removes digits/"@"/labelled names, so real text needs 2 at most


def _scrub_once(text: str) -> str:
    has_at = "@" in text
    for pattern, repl in _RULES:
        if pattern is _EMAIL and not has_at:
            continue
        text = pattern.sub(repl, text)
    return text


def scrub(text: str) -> str:
    """Return ``text`` with SSNs, MRNs, dates of birth, phone numbers and e-mails redacted."""
    if not isinstance(text, str):
        raise TypeError(f"scrub() takes a str, not {type(text).__name__}")
    if _HAS_CANDIDATE.search(text) is None and _PATIENT_NAME.search(text) is None:
        return text
    for _ in range(_MAX_PASSES):
        out = _scrub_once(text)
        if out == text:
            break
        text = out
    return text


# --- structured values ------------------------------------------------------------------------
# Keys are compared after lower-casing and dropping every non-alphanumeric character, so
# "Patient-Name", "patient_name" and "patientName" are one key.
_KEY_KINDS: dict[str, str] = {}
for _kind, _names in {
    "name": (
        "patient",
        "patientname",
        "patientfullname",
        "ptname",
        "firstname",
        "lastname",
        "middlename",
        "givenname",
        "familyname",
        "surname",
        "fullname",
    ),
    "dob": ("dob", "dateofbirth", "birthdate", "birthday"),
    "ssn": ("ssn", "socialsecuritynumber", "socialsecurity", "socialsecurityno", "ssnumber"),
    "mrn": (
        "mrn",
        "medicalrecordnumber",
        "medicalrecordno",
        "medicalrecord",
        "medrecno",
        "patientid",
    ),
    "email": ("email", "emailaddress", "emailaddr"),
    "phone": (
        "phone",
        "phonenumber",
        "phoneno",
        "telephone",
        "tel",
        "mobilephone",
        "cellphone",
        "homephone",
        "workphone",
        "fax",
    ),
}.items():
    for _n in _names:
        _KEY_KINDS[_n] = _kind

_NON_ALNUM = re.compile(r"[^a-z0-9]")
_PATIENT_PREFIXES = ("patient", "pt")


def _key_kind(key: object) -> str | None:
    """The kind of PHI a key names (``None`` for ordinary keys)."""
    if not isinstance(key, str):
        return None
    norm = _NON_ALNUM.sub("", key.lower())
    kind = _KEY_KINDS.get(norm)
    if kind is not None:
        return kind
    for prefix in _PATIENT_PREFIXES:  # patient_dob, pt_phone, patientEmail ...
        if norm.startswith(prefix) and len(norm) > len(prefix):
            kind = _KEY_KINDS.get(norm[len(prefix) :])
            if kind is not None:
                return kind
    return None


def scrub_obj(obj: Any) -> Any:
    """Return a scrubbed copy of a JSON-like value; the input is not changed.

    A value under a PHI key (``patient_name``, ``dob``, ``ssn``, ``mrn``, ``email``, ``phone``, ...)
    is replaced whole by ``[REDACTED:<kind>]`` whatever its type (``None`` stays ``None``: an
    absent value discloses nothing). Other strings go through :func:`scrub`; numbers, booleans
    and ``None`` are returned untouched; keys are never changed.
    """
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            kind = _key_kind(key)
            if kind is not None and value is not None:
                out[key] = redaction(kind)
            else:
                out[key] = scrub_obj(value)
        return out
    if isinstance(obj, list):
        return [scrub_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(scrub_obj(v) for v in obj)
    return obj
