"""WinRM trust on first use, end to end (issue 15 item 4): real osiris-server, real agent cycle,
real pywinrm over HTTPS to the lab WS-Man listener. A credential without CA bundle or thumbprint:
the first cycle records the listener's SHA-256 as evidence and pins it; the listener then
presents another certificate — refused (hostkey), nothing sent to it; an operator confirms the
new certificate by setting cert_thumbprint (with the password again) and the host works again."""

from __future__ import annotations

from osiris_core.catalog import load_catalog
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.agent.winrm_certs import make
from tests.e2e.conftest import WIN_PASSWORD, bundles, enroll_agent, seed_site


def _serve(cert, tmp, port: int = 0) -> WsmanLabServer:
    return WsmanLabServer(port, handler=WindowsLabHost(load_catalog()), password=WIN_PASSWORD,
                          ssl_context=cert.server_context(tmp)).start()  # fmt: skip


def _fw(agent) -> dict:
    return {(r["host_id"], r["check"]): r for r in agent.db.results()}[("dc01", "windows_firewall")]


def test_tofu_then_swap_refused_then_operator_confirms(central, tmp_path) -> None:
    first, second = make("dc01"), make("dc01")
    srv = _serve(first, tmp_path)
    site = seed_site(central)
    cred = central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": "dc01", "kind": "winrm", "address": "127.0.0.1", "port": srv.port,
        "lab": True, "use_tls": True, "verify_tls": True, "username": "Administrator",
        "password": WIN_PASSWORD,
    })  # fmt: skip
    a = enroll_agent(central, site, tmp_path / "state")
    swapped = None
    try:
        r = a.cycle()
        assert r.reachable and _fw(a)["status"] == "compliant", r.errors
        tofu = [b for b in bundles(a) if "accepted on first use" in b["action_taken"]]
        assert len(tofu) == 1 and first.sha256 in tofu[0]["action_taken"]
        assert tofu[0]["pre_state"]["observed"] == {"cert_thumbprint": first.sha256}
        port = srv.port
        srv.stop()
        a.transports.close({"dc01"})  # the next use opens a new connection
        swapped = _serve(second, tmp_path, port)
        a.cycle()
        assert _fw(a)["status"] == "error"
        assert swapped.authorization_seen == [] and swapped.calls == []
        assert len([b for b in bundles(a) if "accepted on first use" in b["action_taken"]]) == 1
        # the operator looks at the new certificate and confirms it in the credential
        central.api("PATCH", f"/sites/{site.id}/credentials/{cred['id']}",
                    {"cert_thumbprint": second.sha256, "password": WIN_PASSWORD})  # fmt: skip
        a.cycle()
        assert _fw(a)["status"] == "compliant"
        assert swapped.authorization_seen and all(swapped.authorization_seen)
    finally:
        a.close()
        (swapped or srv).stop()
