"""An appliance named the way a technician names it: by its id or by its hostname.

Why: the technician reads ``rv-app-01`` on the fleet screen, not ``app_3f9c…``; the CLI used to
take only the id and answered a hostname with "appliance not found". A name is resolved through
the API (``GET /appliances``, what this token may see), so it can never reach an appliance the
server would hide; an ambiguous or unknown name exits 2 and lists what to type instead.
"""

from __future__ import annotations

import difflib
from typing import Any

from osiris_core.errors import ExitCode

from ..fmt import safe
from .base import fail

ID_PREFIX = "app_"  # server-minted appliance ids (osiris_core.ids.APPLIANCE_ID's example)
MAX_LISTED = 10


def _label(a: Any) -> str:
    return f"{a.id} ({safe(a.hostname)} at {safe(a.site_id)})"


def appliance_id(client: Any, ref: str) -> str:
    """The id of the appliance ``ref`` names (an id is taken as it is; the server judges it)."""
    if ref.startswith(ID_PREFIX):
        return ref
    apps = client.appliances()
    for match in (lambda a: a.hostname == ref, lambda a: a.hostname.lower() == ref.lower()):
        found = [a for a in apps if match(a)]
        if len(found) == 1:
            return str(found[0].id)
        if found:
            fail(
                f'appliance name "{safe(ref)}" is ambiguous: '
                + ", ".join(_label(a) for a in found[:MAX_LISTED])
                + "; give its id with --appliance",
                ExitCode.USAGE,
            )
    names = sorted({a.hostname for a in apps})
    near = difflib.get_close_matches(ref, names, n=3, cutoff=0.6)
    msg = f'no appliance named "{safe(ref)}"'
    if near:
        msg += f"; did you mean {' or '.join(safe(n) for n in near)}?"
    elif names:
        more = f", … ({len(names)} in all)" if len(names) > MAX_LISTED else ""
        msg += f"; appliances: {', '.join(safe(n) for n in names[:MAX_LISTED])}{more}"
    else:
        msg += "; this token sees no appliances (osiris appliance list)"
    fail(msg, ExitCode.USAGE)
