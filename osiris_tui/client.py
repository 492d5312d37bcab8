"""Typed client for the Central Command API, shared by the CLI and the console.

Why one client: `osiris site list --json` and the console's Sites view must show the same data,
so both go through these functions. No Textual import here (a test proves it), so the CLI stays
fast and the data layer can be benchmarked and tested on its own.

This module holds the per-noun calls; the transport, its retry rule and the error tree (whose
``exit_code`` is the CLI's exit code) are in ``transport``, the records in ``records``, where the
server and token come from in ``profiles``. Their names are re-exported here, so
``from osiris_tui.client import Client, NotFound, Appliance, resolve_config`` keeps working.
"""

from __future__ import annotations

from typing import Any

from .events import Event
from .profiles import profile_path, resolve_config
from .records import (
    Appliance,
    AuditEntry,
    CheckStatus,
    Credential,
    Incident,
    LearningCandidate,
    Order,
    Partner,
    Provision,
    Record,
    RunbookState,
    Site,
    Token,
    as_json_list,
    runbook_states,
)
from .transport import (
    API,
    DEFAULT_TIMEOUT,
    RETRY_STATUSES,
    AuthRefused,
    ClientError,
    Conflict,
    NotFound,
    Transport,
    Unreachable,
    UsageError,
)
from .transport import seg as _seg


class Client(Transport):
    """The API's calls, one method per endpoint, answering typed records (``records``)."""

    @classmethod
    def from_config(
        cls, server: str | None = None, token: str | None = None, profile: str | None = None
    ) -> Client:
        s, t = resolve_config(server, token, profile)
        return cls(s, t)

    # ---- health

    def healthz(self) -> dict[str, Any]:
        return self.request("GET", "/healthz")

    def stats(self) -> dict[str, Any]:
        return self.get("/stats")

    # ---- sites & appliances

    def sites(self) -> list[Site]:
        return [Site.from_json(r) for r in self.get("/sites")["sites"]]

    def site(self, site_id: str) -> Site:
        return Site.from_json(self.get(f"/sites/{_seg(site_id)}"))

    def create_site(
        self,
        name: str,
        site_id: str | None = None,
        partner_id: str | None = None,
        checkin_interval_s: int | None = None,
    ) -> Site:
        body: dict[str, Any] = {"name": name}
        if site_id:
            body["id"] = site_id
        if partner_id:
            body["partner_id"] = partner_id
        if checkin_interval_s:
            body["checkin_interval_s"] = checkin_interval_s
        return Site.from_json(self.post("/sites", body))

    def update_site(self, site_id: str, **changes: Any) -> Site:
        return Site.from_json(self.patch(f"/sites/{_seg(site_id)}", changes))

    def appliances(self, site_id: str | None = None) -> list[Appliance]:
        if site_id is None:
            data = self.get("/appliances")
        else:
            data = self.get(f"/sites/{_seg(site_id)}/appliances")
        return [Appliance.from_json(r) for r in data["appliances"]]

    def appliance(self, appliance_id: str) -> Appliance:
        return Appliance.from_json(self.get(f"/appliances/{_seg(appliance_id)}"))

    def confirm_appliance(self, appliance_id: str) -> dict[str, Any]:
        """Admin: lift a quarantine; the appliance then receives its site's credentials."""
        return self.post(f"/appliances/{_seg(appliance_id)}/confirm", {})

    def revoke_appliance(self, appliance_id: str) -> dict[str, Any]:
        return self.delete(f"/appliances/{_seg(appliance_id)}")

    # ---- runbooks

    def site_runbooks(self, site_id: str) -> list[RunbookState]:
        return runbook_states(self.get(f"/sites/{_seg(site_id)}/runbooks"))

    def set_site_runbooks(
        self, site_id: str, changes: dict[str, bool | None]
    ) -> list[RunbookState]:
        view = self.put(f"/sites/{_seg(site_id)}/runbooks", {"runbooks": changes})
        return runbook_states(view)

    def appliance_runbooks(self, appliance_id: str) -> list[RunbookState]:
        return runbook_states(self.get(f"/appliances/{_seg(appliance_id)}/runbooks"))

    def set_appliance_runbooks(
        self, appliance_id: str, changes: dict[str, bool | None]
    ) -> list[RunbookState]:
        view = self.put(f"/appliances/{_seg(appliance_id)}/runbooks", {"runbooks": changes})
        return runbook_states(view)

    # ---- runbook parameters (per-site policy thresholds)

    def runbook_params(
        self, site_id: str, runbook_id: str, appliance_id: str | None = None
    ) -> dict[str, Any]:
        """``{runbook_id, site_id, schema, defaults, site, effective[, appliance_id,
        appliance]}``; with ``appliance_id`` the appliance must belong to ``site_id``."""
        if appliance_id is None:
            return self.get(f"/sites/{_seg(site_id)}/runbooks/{_seg(runbook_id)}/params")
        view = self.get(f"/appliances/{_seg(appliance_id)}/runbooks/{_seg(runbook_id)}/params")
        self._same_site(view, site_id, appliance_id)
        return view

    def set_runbook_params(
        self,
        site_id: str,
        runbook_id: str,
        params: dict[str, Any],
        appliance_id: str | None = None,
    ) -> dict[str, Any]:
        """Set (value) or clear (``None``) parameters; the server validates against the
        catalogue and answers with the same view as :meth:`runbook_params`."""
        body = {"params": params}
        if appliance_id is None:
            path = f"/sites/{_seg(site_id)}/runbooks/{_seg(runbook_id)}/params"
            return self.put(path, body)
        self.runbook_params(site_id, runbook_id, appliance_id)  # refuses another site's
        path = f"/appliances/{_seg(appliance_id)}/runbooks/{_seg(runbook_id)}/params"
        return self.put(path, body)

    def site_runbook_params(self, site_id: str) -> dict[str, dict[str, Any]]:
        """Every value set at the site: ``{runbook_id: {name: value}}``."""
        return self.get(f"/sites/{_seg(site_id)}/runbook-params").get("params", {})

    @staticmethod
    def _same_site(view: dict[str, Any], site_id: str, appliance_id: str) -> None:
        if view.get("site_id") != site_id:
            raise NotFound(f"appliance {appliance_id} is not in site {site_id}", "E_NOT_FOUND")

    # ---- credentials

    def credentials(self, site_id: str) -> list[Credential]:
        data = self.get(f"/sites/{_seg(site_id)}/credentials")
        return [Credential.from_json(r) for r in data["credentials"]]

    def credential(self, site_id: str, cred_id: str) -> Credential:
        return Credential.from_json(self.get(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}"))

    def add_credential(self, site_id: str, fields: dict[str, Any]) -> Credential:
        return Credential.from_json(self.post(f"/sites/{_seg(site_id)}/credentials", fields))

    def update_credential(self, site_id: str, cred_id: str, fields: dict[str, Any]) -> Credential:
        path = f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}"
        return Credential.from_json(self.patch(path, fields))

    def delete_credential(self, site_id: str, cred_id: str) -> dict[str, Any]:
        return self.delete(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}")

    def reveal_credential(self, site_id: str, cred_id: str) -> dict[str, Any]:
        """Admin only; the server audits every reveal."""
        return self.post(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}/reveal", {})

    # ---- escrowed recovery keys (BitLocker)

    def escrowed_keys(self, site_id: str) -> list[dict[str, Any]]:
        """Where and when, never the key."""
        return list(self.get(f"/sites/{_seg(site_id)}/escrow")["escrow"])

    def reveal_escrowed_key(self, site_id: str, escrow_id: str) -> dict[str, Any]:
        """Admin only; the server audits every reveal."""
        return self.post(f"/sites/{_seg(site_id)}/escrow/{_seg(escrow_id)}/reveal", {})

    # ---- orders

    def orders(self, appliance_id: str, limit: int | None = None) -> list[Order]:
        data = self.get(f"/appliances/{_seg(appliance_id)}/orders", limit=limit)
        return [Order.from_json(r) for r in data["orders"]]

    def order(self, appliance_id: str, order_id: str) -> Order:
        return Order.from_json(
            self.get(f"/appliances/{_seg(appliance_id)}/orders/{_seg(order_id)}")
        )

    def create_order(
        self,
        appliance_id: str,
        kind: str,
        params: dict[str, Any] | None = None,
        disruptive: bool | None = None,
        ttl_s: int | None = None,
    ) -> Order:
        body: dict[str, Any] = {"kind": kind, "params": params or {}}
        if disruptive is not None:
            body["disruptive"] = disruptive
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return Order.from_json(self.post(f"/appliances/{_seg(appliance_id)}/orders", body))

    # ---- incidents

    def incidents(
        self, site_id: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Incident]:
        data = self.get("/incidents", site=site_id, status=status, limit=limit)
        return [Incident.from_json(r) for r in data["incidents"]]

    def incident(self, incident_id: str) -> Incident:
        return Incident.from_json(self.get(f"/incidents/{_seg(incident_id)}"))

    def resolve_incident(self, incident_id: str, note: str | None = None) -> Incident:
        body = {"note": note} if note else {}
        return Incident.from_json(self.post(f"/incidents/{_seg(incident_id)}/resolve", body))

    def acknowledge_incident(self, incident_id: str) -> Incident:
        return Incident.from_json(self.post(f"/incidents/{_seg(incident_id)}/acknowledge", {}))

    def assign_incident(self, incident_id: str, assignee: str | None) -> Incident:
        """Assign an open incident to a person; ``None`` clears the assignee."""
        path = f"/incidents/{_seg(incident_id)}/assign"
        return Incident.from_json(self.post(path, {"assignee": assignee}))

    # ---- events

    def events(
        self, since: str | None = None, site_id: str | None = None, limit: int | None = None
    ) -> tuple[list[Event], str | None, bool]:
        """One page of ``GET /events``: (events oldest first, the next cursor, more waiting)."""
        data = self.get("/events", since=since, site=site_id, limit=limit)
        return [Event.from_json(r) for r in data["events"]], data.get("cursor"), data["more"]

    # ---- provisioning

    def provisions(self) -> list[Provision]:
        return [Provision.from_json(r) for r in self.get("/provisions")["provisions"]]

    def create_provision(self, site_id: str, ttl_s: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"site_id": site_id}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.post("/provisions", body)

    def mac_requests(self) -> list[dict[str, Any]]:
        """MAC enrollment requests (admins and operators of every site only)."""
        return list(self.get("/provisions").get("mac_requests", []))

    def approve_mac(
        self, mac: str, site_id: str, fingerprint: str, ttl_s: int | None = None
    ) -> dict[str, Any]:
        """Approve one requester of a MAC, named by its full fingerprint."""
        body: dict[str, Any] = {"site_id": site_id, "requester_fingerprint": fingerprint}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.post(f"/provision/{_seg(mac)}", body)

    def delete_mac(self, mac: str) -> dict[str, Any]:
        return self.delete(f"/provision/{_seg(mac)}")

    def delete_provision(self, provision_id: str) -> dict[str, Any]:
        return self.delete(f"/provisions/{_seg(provision_id)}")

    # ---- partners, tokens, audit

    def partners(self) -> list[Partner]:
        return [Partner.from_json(r) for r in self.get("/partners")["partners"]]

    def create_partner(self, name: str, contact_email: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if contact_email:
            body["contact_email"] = contact_email
        return self.post("/partners", body)

    def tokens(self) -> list[Token]:
        return [Token.from_json(r) for r in self.get("/tokens")["tokens"]]

    def create_token(self, role: str, name: str, site_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"role": role, "name": name}
        if site_id:
            body["site_id"] = site_id
        return self.post("/tokens", body)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self.delete(f"/tokens/{_seg(token_id)}")

    def learning_candidates(
        self, site_id: str | None = None, status: str | None = None
    ) -> list[LearningCandidate]:
        data = self.get("/learning/candidates", site=site_id, status=status)
        return [LearningCandidate.from_json(r) for r in data["candidates"]]

    def learning_candidate(self, candidate_id: str) -> dict[str, Any]:
        """One pattern with its rule, thresholds and the evidence bundles behind it."""
        return self.get(f"/learning/candidates/{_seg(candidate_id)}")

    def learning_approve(self, candidate_id: str, **body: Any) -> dict[str, Any]:
        """Admin only: ``canary_sites``, ``canary_percent``, ``soak_s`` (None or empty: the
        server's default) — the candidate is signed for the canary sites."""
        path = f"/learning/candidates/{_seg(candidate_id)}/approve"
        return self.post(path, {k: v for k, v in body.items() if v not in (None, [])})

    def learning_reject(self, candidate_id: str, reason: str) -> dict[str, Any]:
        return self.post(f"/learning/candidates/{_seg(candidate_id)}/reject", {"reason": reason})

    def audit(
        self,
        site_id: str | None = None,
        action: str | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        data = self.get("/audit", site=site_id, action=action, before=before, limit=limit)
        return [AuditEntry.from_json(r) for r in data["audit"]]

    # ---- evidence and the log

    def evidence(
        self,
        site_id: str,
        appliance_id: str | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        return self.get(
            "/evidence", site=site_id, appliance=appliance_id, after_seq=after_seq, limit=limit
        )

    def log_checkpoint(self) -> str:
        return self.request("GET", API + "/log/checkpoint", raw=True)

    def log_keys(self) -> dict[str, Any]:
        return self.get("/log/keys")

    def inclusion_proof(self, bundle_hash: str) -> Any:
        return self.get("/log/proof/inclusion", hash=bundle_hash)


__all__ = [
    "API",
    "DEFAULT_TIMEOUT",
    "RETRY_STATUSES",
    "Appliance",
    "AuditEntry",
    "AuthRefused",
    "CheckStatus",
    "Client",
    "ClientError",
    "Conflict",
    "Credential",
    "Incident",
    "LearningCandidate",
    "NotFound",
    "Order",
    "Partner",
    "Provision",
    "Record",
    "RunbookState",
    "Site",
    "Token",
    "Unreachable",
    "UsageError",
    "as_json_list",
    "profile_path",
    "resolve_config",
    "runbook_states",
]
