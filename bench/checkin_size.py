"""Check-in answer size: an unchanged appliance beside the full answer, measured in one run.

The real server (embedded, real SQLite, real loopback HTTP) with one clinic site holding five
credentials, and one appliance enrolled through a claim code with a box key, as the agent
does. Printed: the bytes of the answer body for

* the full answer (an agent that names nothing it holds: everything is sent — today's answer),
* an unchanged appliance (it names the rules, targets and policy it holds: budget 2 KB,
  DESIGN §5),
* a changed one: only the policy changed (a site parameter), only the targets changed (a
  rotated credential).

Sizes, not timings: the figures do not depend on the machine's load.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET = 2048
CREDENTIALS = 5


def main() -> int:
    import httpx
    from nacl.public import PrivateKey

    from osiris_core import canonical, protocol
    from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer
    from osiris_core.seal import public_b64
    from osiris_server.app import App, init_data
    from osiris_server.serve import make_server

    with tempfile.TemporaryDirectory(prefix="osiris-bench-size-") as tmp:
        data = Path(tmp) / "data"
        admin_token = init_data(data, "bench.osiris/osiris/log")["admin_token"]
        app = App.open(data, request_log=False, checkpoint_interval_s=0.0)
        srv = make_server(app, "127.0.0.1", 0, max_body_bytes=app.cfg.max_body_bytes)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        t.daemon = True
        t.start()
        url = f"http://127.0.0.1:{srv.server_address[1]}/api/v1"
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"})
        try:
            site = admin.post("/sites", json={"name": "Bench clinic"}).json()["id"]
            creds = []
            for i in range(CREDENTIALS):
                r = admin.post(f"/sites/{site}/credentials", json={
                    "host_id": f"host{i:02d}", "kind": "winrm", "address": f"10.0.0.{10 + i}",
                    "username": "CLINIC\\osiris", "password": f"Bench-Pw-{i}-7f3e",
                })  # fmt: skip
                creds.append(r.json()["id"])
            code = admin.post("/provisions", json={"site_id": site}).json()["code"]
            box = PrivateKey.generate()
            sk = Signer("tmp", os.urandom(32))
            ck = Signer("tmp", os.urandom(32), key_type=KEY_TYPE_COSIGNATURE)
            enrolled = httpx.post(url + "/provision/claim", json={
                "code": code, "hostname": "bench-appliance", "agent_version": "0.1.0",
                "signing_pub": base64.b64encode(sk.public).decode(),
                "cosign_pub": base64.b64encode(ck.public).decode(), "box_pub": public_b64(box),
            }).json()  # fmt: skip
            me = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {enrolled['token']}"}
            )
            held: dict[str, Any] = {}

            def checkin(holds: bool) -> tuple[int, dict[str, Any]]:
                body: dict[str, Any] = {
                    "appliance_id": enrolled["appliance_id"], "agent_version": "0.1.0",
                    "status": {"uptime_s": 1, "outbox_depth": 0, "chain_head": "sha256:" +
                               "0" * 64, "seq": 0, "checks": [],
                               "clock": {"ntp_ok": True, "offset_ms": 0, "source": "bench"}},
                    "log_size_seen": 0,
                }  # fmt: skip
                if holds:
                    body["holds"] = {k: held[k] for k in ("rules", "targets") if k in held}
                    if "policy" in held:
                        body["policy_version"] = held["policy"]
                r = me.post("/checkin", json=body)
                r.raise_for_status()
                resp = r.json()
                protocol.validate_checkin_response(resp)
                if holds:  # what the agent then holds
                    if "rules" in resp:
                        signed = canonical.dumps(resp["rules"]["signed"])
                        held["rules"] = "sha256:" + hashlib.sha256(signed).hexdigest()
                    if "targets" in resp:
                        held["targets"] = resp["targets_hash"]
                    if "policy" in resp:
                        held["policy"] = resp["policy"]["policy"]["version"]
                return len(r.content), resp

            full, full_resp = checkin(holds=False)
            checkin(holds=True)  # the first answer to an agent holding nothing: everything
            unchanged, u = checkin(holds=True)
            param = {"params": {"critical_overdue_days": 15}}
            admin.put(
                f"/sites/{site}/runbooks/RB-WIN-PATCH-001/params", json=param
            ).raise_for_status()
            policy_only, p = checkin(holds=True)
            admin.patch(f"/sites/{site}/credentials/{creds[0]}",
                        json={"password": "Bench-Pw-rotated"}).raise_for_status()  # fmt: skip
            targets_only, tg = checkin(holds=True)
        finally:
            admin.close()
            srv.shutdown()
            srv.server_close()
            app.close()

    rules = len(canonical.dumps(full_resp["rules"]))
    print(f"check-in answer, {CREDENTIALS} credentials (bytes of the body):")
    print(f"  full (everything sent)  {full:7,d}  (rules {rules:,d})")
    print(f"  unchanged appliance     {unchanged:7,d}  budget {BUDGET:,d}  "
          f"(unchanged: {','.join(sorted(u['unchanged']))})")  # fmt: skip
    print(f"  policy changed only     {policy_only:7,d}  "
          f"(unchanged: {','.join(sorted(p['unchanged']))})")  # fmt: skip
    print(f"  targets changed only    {targets_only:7,d}  "
          f"(unchanged: {','.join(sorted(tg['unchanged']))})")  # fmt: skip
    ok = (
        unchanged <= BUDGET
        and sorted(u["unchanged"]) == ["policy", "rules", "targets"]
        and sorted(p["unchanged"]) == ["rules", "targets"]
        and sorted(tg["unchanged"]) == ["policy", "rules"]
    )
    print("  OK" if ok else "  OVER BUDGET or wrong parts")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
