"""`osiris packet review|reviews` and `osiris exception accept|list` as real processes against
the real server (issue 17 item 4): stable --json, the packet's SHA-256 computed locally from the
file given, the reviewer/acceptor the token's name, refusals as one line with exit 2 (input) or
4 (role), and no terminal control sequence from a hostile note reaching the output."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from osiris_core import canonical
from tests.tui.test_cli import run

MONTH = datetime.now(UTC).strftime("%Y-%m")


def _token(live, role: str, name: str) -> str:
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": role, "name": name})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _site(live, name: str, hostname: str) -> str:
    site = live.site(name)
    live.enroll(site["id"], hostname)
    return site["id"]


def _one_line_error(r, code: int) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.startswith("osiris: error: "), r.stderr
    assert r.stderr.count("\n") == 1 and "\x1b" not in r.stderr


def test_packet_review_and_reviews(live, tmp_path) -> None:
    site = _site(live, "Review CLI clinic", "review-app-1")
    op = _token(live, "operator", "Rita Reviewer")
    zip_file = tmp_path / "packet.zip"
    zip_file.write_bytes(b"PK\x03\x04 not really a packet, only its bytes matter" * 1000)
    r = run(live, "packet", "review", "--site", site, "--month", MONTH, "--note", "all read",
            "--packet", str(zip_file), "--json", token=op)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"site_id", "statement", "orders"}
    st = out["statement"]
    assert set(st) == {"reviewer", "reviewed_at", "month", "note", "packet_sha256"}
    assert st["reviewer"] == "Rita Reviewer" and st["month"] == MONTH
    assert st["packet_sha256"] == hashlib.sha256(zip_file.read_bytes()).hexdigest()
    assert len(out["orders"]) == 1

    r = run(live, "packet", "reviews", "--site", site, "--json", token=op)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert set(listed) == {"site_id", "statements", "orders"} and listed["statements"] == []
    assert [o["params"]["reviewer"] for o in listed["orders"]] == ["Rita Reviewer"]
    r = run(live, "packet", "reviews", "--site", site, token=op)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split("\t")[:3] == ["MONTH", "REVIEWER", "REVIEWED_AT"]
    assert "not yet signed" in r.stderr and "Rita Reviewer" in r.stderr

    # a review text carrying terminal escapes is refused; the error does not replay them
    r = run(live, "packet", "review", "--site", site, "--month", MONTH,
            "--note", "ok\x1b[2J\x1b]0;owned\x07", token=op)  # fmt: skip
    _one_line_error(r, 2)
    assert "U+001B" in r.stderr
    later = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m")
    _one_line_error(run(live, "packet", "review", "--site", site, "--month", later, token=op), 2)
    _one_line_error(run(live, "packet", "review", "--site", "no-such-site", "--month", MONTH,
                        token=op), 2)  # fmt: skip
    auditor = _token(live, "auditor", "Auditor A")
    _one_line_error(run(live, "packet", "review", "--site", site, "--month", MONTH,
                        token=auditor), 4)  # fmt: skip


def test_exception_accept_and_list(live) -> None:
    site = _site(live, "Exception CLI clinic", "exception-app-1")
    appliance = json.loads(run(live, "appliance", "list", "--site", site, "--json").stdout)[0]
    sec = _token(live, "admin", "Sam Security")
    until = (datetime.now(UTC) + timedelta(days=100)).strftime("%Y-%m-%d")
    args = ["exception", "accept", "--site", site, "--host", appliance["id"], "--check",
            "timesync", "--reason", "lab clock, vendor fix due"]  # fmt: skip
    r = run(live, *args, "--until", until, "--json", token=sec)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["statement"]
    assert st["by"] == "Sam Security" and st["until"] == f"{until}T00:00:00.000Z"
    assert st["exception_opened_at"] is None

    r = run(live, "exception", "list", "--site", site, "--json", token=sec)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert set(listed) == {"site_id", "statements", "orders"}
    assert [(o["params"]["by"], o["params"]["check"]) for o in listed["orders"]] == [
        ("Sam Security", "timesync")
    ]
    r = run(live, "exception", "list", "--site", site, token=sec)
    assert r.returncode == 0 and r.stdout.startswith("HOST\tCHECK\tUNTIL\tBY"), r.stdout

    too_late = canonical.format_time(datetime.now(UTC) + timedelta(days=400))
    r = run(live, *args, "--until", too_late, token=sec)
    _one_line_error(r, 2)
    assert "one year" in r.stderr
    r = run(live, *args[:5], "ghost01", *args[6:], "--until", until, token=sec)
    _one_line_error(r, 2)
    assert "ghost01" in r.stderr
    op = _token(live, "operator", "Op O")
    _one_line_error(run(live, *args, "--until", until, token=op), 4)  # admin only
