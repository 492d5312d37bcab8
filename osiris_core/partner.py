"""Partner and reseller: one entity under two words, linked here once.

The server says **partner**: the account of an MSP's reseller business, which holds ``opk_`` API
keys and owns sites (``sites.partner_id``, ``osiris site add --partner``). The agent and the
evidence say **reseller**: ``deployment.reseller_id`` in the agent's config and ``reseller_id`` in
every bundle. They name the same entity: a bundle's ``reseller_id``, when set, is the partner id
of the bundle's site on the server. Neither word is renamed on the wire or in the database —
bundles already signed and rows already stored must stay valid — so this module is where the two
meet, and both sides use it (docs/evidence-format.md, Vocabulary).

Why the server checks the claim (:func:`check_reseller`): the id is inside the appliance's
signature, so an auditor reading a bundle believes it; an appliance must not be able to sign a
bundle into another partner's name. A null ``reseller_id`` claims nothing (``direct`` mode) and
is accepted on any site: the server's site record says who the site's partner is.
"""

from __future__ import annotations

from osiris_core.errors import InputError

# The evidence bundle's field that holds the site's partner id (the server's word: partner).
RESELLER_FIELD = "reseller_id"


class ResellerMismatch(InputError):
    """A bundle names a reseller that is not its site's partner (refused, nothing written)."""

    code = "E_RESELLER"
    http_status = 403


def check_reseller(reseller_id: str | None, site_partner_id: str | None) -> None:
    """Refuse a bundle whose ``reseller_id`` is not its site's partner at ingest time.

    ``None`` (no claim) passes whatever the site's partner is; any other value must equal
    ``site_partner_id`` exactly, so a claim on a site without a partner is refused too. The
    message never names the site's actual partner.
    """
    if reseller_id is None or reseller_id == site_partner_id:
        return
    if site_partner_id is None:
        raise ResellerMismatch(
            f"{RESELLER_FIELD} {reseller_id!r}: this site has no partner, so its bundles name "
            "no reseller"
        )
    raise ResellerMismatch(f"{RESELLER_FIELD} {reseller_id!r} is not this site's partner")
