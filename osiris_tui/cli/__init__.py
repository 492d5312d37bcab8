"""`osiris`: the operator CLI, one module per noun (`osiris <noun> <verb>`).

``base`` holds the root group ``main`` and what every noun shares (``client_of``, ``fail``,
the ``emit_*`` / ``listing`` / ``show`` / ``confirm`` / ``read_secret`` helpers, ``JSON_OPT``,
``YES_OPT``); each noun module defines its click group (or command) without importing the root
group, and this module adds them all to ``main`` — so no noun imports another's module through
the package, and there is no import cycle. Tables come from the column specs the console shares
(``osiris_tui.columns``). Conventions (output, exit codes, secrets): see ``base``.
Textual is imported only by `osiris tui` (``cli/tui.py``); ``osiris_lab`` only by `osiris demo`
(``cli/demo.py``, the one documented exception to the layering rule).
"""

from __future__ import annotations

from ..client import UsageError
from .alerts import alerts
from .appliance import appliance
from .audit import audit
from .base import main
from .cred import cred
from .demo import demo
from .escrow import escrow
from .evidence import evidence
from .exception import exception
from .incident import incident
from .learn import learning
from .order import order
from .packet import packet
from .partner import partner
from .provision import provision
from .review import review, reviews
from .runbook import runbook
from .site import site
from .stats import stats
from .token import token
from .trust import trust
from .tui import tui
from .update import fleet, update

for _command in (
    site,
    appliance,
    cred,
    escrow,
    runbook,
    order,
    incident,
    learning,
    provision,
    partner,
    token,
    audit,
    stats,
    tui,
    demo,
    evidence,
    packet,
    trust,
    alerts,
    fleet,
    update,
    exception,
):
    main.add_command(_command)
packet.add_command(review)  # `osiris packet review|reviews` (cli/review.py)
packet.add_command(reviews)
main.add_command(learning, "learn")  # the former name (issue 16 renamed it `learning`)

__all__ = ["main", "UsageError"]
