"""Versioned schema migrations: one list, run on both engines, each in its own write transaction.

A migration is a list of steps. A step is portable DDL written in SQLite's words (TEXT/INTEGER
columns, explicit foreign keys, no SQLite-only syntax), which ``ddl()`` translates for
PostgreSQL in one small function; a step that cannot be translated is a
``{"sqlite": ..., "postgresql": ...}`` pair — still one list, so both engines always have the
same schema version meaning the same tables. Never edit a released migration (its meaning on
SQLite is fixed: data files on disk depend on it): append a new one.

Each migration runs inside ``engine.write()`` — the one writer across processes and hosts —
and re-reads the version there, so two servers starting together on one PostgreSQL database
migrate once, and a failed migration leaves the previous version whole.

Why this file is long: it is the schema's whole history, one released migration after another,
and released migrations are never edited or moved; split over files, the order that defines
each version number could no longer be read in one place.
"""

from __future__ import annotations

import re
import time
from typing import Any

from osiris_core.errors import ExitCode, OsirisError


class SchemaTooNew(OsirisError, RuntimeError):
    """The database was migrated by a newer osiris-server: this binary must not touch it (exit 2,
    one line; upgrade the binary)."""

    code = "E_SCHEMA_TOO_NEW"
    exit_code = ExitCode.USAGE


Step = str | dict[str, str]

MIGRATIONS: list[list[Step]] = [
    # 1: the whole first schema
    [
        """CREATE TABLE partners (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            contact_email TEXT,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE sites (
            id TEXT PRIMARY KEY,
            partner_id TEXT REFERENCES partners(id),
            name TEXT NOT NULL,
            window_days TEXT NOT NULL,
            window_start TEXT NOT NULL,
            window_duration_min INTEGER NOT NULL,
            timezone TEXT NOT NULL,
            checkin_interval_s INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX sites_partner ON sites(partner_id)",
        """CREATE TABLE appliances (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            hostname TEXT NOT NULL,
            mac TEXT,
            signing_vkey TEXT NOT NULL,
            cosign_vkey TEXT NOT NULL,
            agent_version TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            last_seen_at TEXT,
            last_seen_epoch INTEGER,
            status_json TEXT,
            log_size_seen INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX appliances_site ON appliances(site_id)",
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            site_id TEXT REFERENCES sites(id),
            partner_id TEXT REFERENCES partners(id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT
        )""",
        """CREATE TABLE provisions (
            id TEXT PRIMARY KEY,
            code_hash TEXT NOT NULL UNIQUE,
            site_id TEXT NOT NULL REFERENCES sites(id),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            expires_epoch INTEGER NOT NULL,
            used_at TEXT,
            appliance_id TEXT,
            mac TEXT
        )""",
        """CREATE TABLE mac_requests (
            mac TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            site_id TEXT REFERENCES sites(id),
            provision_id TEXT REFERENCES provisions(id),
            code_enc TEXT,
            requested_at TEXT NOT NULL,
            source TEXT,
            approved_at TEXT,
            approved_by TEXT
        )""",
        """CREATE TABLE credentials (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            host_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            address TEXT NOT NULL,
            port INTEGER NOT NULL,
            lab INTEGER NOT NULL,
            username TEXT NOT NULL,
            secret_enc TEXT NOT NULL,
            host_key_fingerprints TEXT NOT NULL,
            use_tls INTEGER NOT NULL,
            verify_tls INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (site_id, host_id)
        )""",
        """CREATE TABLE runbook_toggles (
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            runbook_id TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (scope, scope_id, runbook_id)
        )""",
        """CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            appliance_id TEXT NOT NULL REFERENCES appliances(id),
            kind TEXT NOT NULL,
            params_json TEXT NOT NULL,
            disruptive INTEGER NOT NULL,
            envelope TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            expires_epoch INTEGER NOT NULL,
            delivered_at TEXT,
            done_at TEXT,
            result_bundle_hash TEXT,
            result_outcome TEXT
        )""",
        "CREATE INDEX orders_appliance ON orders(appliance_id, status)",
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            appliance_id TEXT,
            host_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            details_json TEXT NOT NULL,
            status TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            first_seen_epoch INTEGER NOT NULL,
            resolved_at TEXT,
            resolved_by TEXT,
            alerted_at TEXT
        )""",
        "CREATE INDEX incidents_site ON incidents(site_id, status)",
        "CREATE INDEX incidents_dedup ON incidents(appliance_id, host_id, kind, status)",
        """CREATE TABLE evidence (
            bundle_hash TEXT PRIMARY KEY,
            log_index INTEGER NOT NULL UNIQUE,
            site_id TEXT NOT NULL,
            appliance_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            prev_hash TEXT NOT NULL,
            host_id TEXT NOT NULL,
            check_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            order_id TEXT,
            finished_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            UNIQUE (appliance_id, seq)
        )""",
        "CREATE INDEX evidence_site ON evidence(site_id, appliance_id, seq)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            site_id TEXT,
            source TEXT,
            detail_json TEXT NOT NULL
        )""",
        """CREATE TABLE learning_candidates (
            id TEXT PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            check_id TEXT NOT NULL,
            runbook_id TEXT NOT NULL,
            successes INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            status TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ],
    # 2: per-scope change counters, bumped in the same transaction as the rows they cover, so a
    # process (or another gunicorn worker) can cache per-site check-in data and see every change
    # with one primary-key read (osiris_server/db/gen.py)
    [
        """CREATE TABLE cache_gen (
            scope TEXT PRIMARY KEY,
            gen INTEGER NOT NULL
        )""",
    ],
    # 3: per-site / per-appliance runbook parameter values (policy thresholds such as
    # critical_overdue_days); one row per parameter so an appliance overrides a single value
    # and inherits the rest. value_json holds a JSON scalar checked against the catalogue.
    [
        """CREATE TABLE runbook_params (
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            runbook_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value_json TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (scope, scope_id, runbook_id, name)
        )""",
    ],
    # 4: a MAC enrollment request is bound to a secret the requesting appliance chose on its
    # first poll (stored hashed); an approved claim code is only ever returned to that requester,
    # so knowing the MAC (printed on the box, visible on the LAN) grants nothing (DESIGN §6).
    [
        "ALTER TABLE mac_requests ADD COLUMN requester_hash TEXT",
    ],
    # 5: appliance signing-key rotations (osiris.key-rotation/1 statements signed by the old
    # key, accepted at POST /appliance/key-rotation); evidence ingest picks each bundle's key by
    # the epoch its seq falls in, and GET /log/keys hands the statements to auditors
    [
        """CREATE TABLE appliance_key_rotations (
            appliance_id TEXT NOT NULL REFERENCES appliances(id),
            effective_seq INTEGER NOT NULL,
            old_vkey TEXT NOT NULL,
            new_vkey TEXT NOT NULL,
            statement TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (appliance_id, effective_seq)
        )""",
    ],
    # 6: enrolment grants nothing by itself (DESIGN §3.7, §6). Appliances register a box key
    # for sealed credentials and are quarantined (no credential at all) when their claim code
    # was made by a non-admin, until an admin confirms them. MAC requests are one row per
    # (MAC, requester): a stranger polling a MAC first binds nothing, an approval names the
    # requester's full fingerprint, and pending requests expire. Credential deliveries are
    # remembered in the database, so each version is audited once per appliance, ever.
    [
        "ALTER TABLE appliances ADD COLUMN box_pub TEXT",
        "ALTER TABLE appliances ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE appliances ADD COLUMN confirmed_by TEXT",
        "ALTER TABLE appliances ADD COLUMN confirmed_at TEXT",
        "ALTER TABLE provisions ADD COLUMN admin_issued INTEGER NOT NULL DEFAULT 0",
        "DROP TABLE mac_requests",
        """CREATE TABLE enroll_requests (
            mac TEXT NOT NULL,
            requester_hash TEXT NOT NULL,
            source TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            expires_epoch INTEGER NOT NULL,
            status TEXT NOT NULL,
            site_id TEXT,
            provision_id TEXT REFERENCES provisions(id),
            code_enc TEXT,
            approved_at TEXT,
            approved_by TEXT,
            PRIMARY KEY (mac, requester_hash)
        )""",
        "CREATE INDEX enroll_requests_source ON enroll_requests (source, status)",
        """CREATE TABLE credential_deliveries (
            appliance_id TEXT NOT NULL,
            credential_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            delivered_at TEXT NOT NULL,
            PRIMARY KEY (appliance_id, credential_id, version)
        )""",
    ],
    # 7: the signed policy (DESIGN §3.6) and trust-redirecting parameters. policy_versions keeps
    # the last policy issued to each appliance: its version only grows (bumped whenever the
    # computed content differs from the last one issued, never reused). Trust-redirecting
    # parameters (update server, DNS, pinned baseline, desired system) must be on a per-site
    # allow-list only an admin edits; each change of such a value is recorded (who, old, new,
    # when) and carried in the policy. Releases are osiris.release/1 documents the server signed
    # for allow-listed NixOS systems. site_l2 lets a site restrict (never enable) L2.
    [
        """CREATE TABLE policy_versions (
            appliance_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            content_sha256 TEXT NOT NULL,
            envelope TEXT NOT NULL,
            issued_at TEXT NOT NULL
        )""",
        """CREATE TABLE trust_allowlists (
            site_id TEXT NOT NULL REFERENCES sites(id),
            runbook_id TEXT NOT NULL,
            name TEXT NOT NULL,
            values_json TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (site_id, runbook_id, name)
        )""",
        """CREATE TABLE trust_changes (
            id INTEGER PRIMARY KEY,
            site_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            runbook_id TEXT NOT NULL,
            name TEXT NOT NULL,
            old_json TEXT,
            new_json TEXT,
            actor TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX trust_changes_scope ON trust_changes (scope, scope_id, runbook_id, name)",
        """CREATE TABLE releases (
            system TEXT PRIMARY KEY,
            envelope TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        """CREATE TABLE site_l2 (
            site_id TEXT PRIMARY KEY REFERENCES sites(id),
            allowed INTEGER NOT NULL,
            min_confidence INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        )""",
    ],
    # 8: incident triage from the console and the CLI (issue 13 item 8): who acknowledged an
    # open incident and when, who it is assigned to, and the note it was resolved with. Status
    # stays open/resolved (filters, alerts and the events feed read it); these are annotations.
    [
        "ALTER TABLE incidents ADD COLUMN acknowledged_at TEXT",
        "ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT",
        "ALTER TABLE incidents ADD COLUMN assignee TEXT",
        "ALTER TABLE incidents ADD COLUMN resolution_note TEXT",
    ],
    # 9: portable feed cursors. GET /events used SQLite's implicit rowid of incidents and
    # appliances as their positions; PostgreSQL has none. ``feed_seq`` is that position, given
    # in insertion order by the one writer (db/util.next_feed_seq). On SQLite it takes the rowid's
    # value, so cursors handed out before the upgrade stay valid.
    [
        "ALTER TABLE incidents ADD COLUMN feed_seq INTEGER",
        {
            "sqlite": "UPDATE incidents SET feed_seq = rowid",
            "postgresql": "UPDATE incidents SET feed_seq = n.seq FROM (SELECT id, ROW_NUMBER()"
            " OVER (ORDER BY first_seen_epoch, id) AS seq FROM incidents) n"
            " WHERE n.id = incidents.id",
        },
        "CREATE UNIQUE INDEX incidents_feed_seq ON incidents (feed_seq)",
        "ALTER TABLE appliances ADD COLUMN feed_seq INTEGER",
        {
            "sqlite": "UPDATE appliances SET feed_seq = rowid",
            "postgresql": "UPDATE appliances SET feed_seq = n.seq FROM (SELECT id, ROW_NUMBER()"
            " OVER (ORDER BY created_at, id) AS seq FROM appliances) n"
            " WHERE n.id = appliances.id",
        },
        "CREATE UNIQUE INDEX appliances_feed_seq ON appliances (feed_seq)",
    ],
    # 10: the alert queue (issue 14 item 2). An alert was an incident id in one process's memory:
    # lost if that process died between committing the incident and sending, and invisible to
    # other servers. Now it is a row written in the same transaction as its incident, claimed by
    # any server process with a lease (claimed_until, epoch seconds), marked sent after delivery
    # and claimable again once a lease expires (api/notify.py).
    [
        """CREATE TABLE alert_queue (
            id TEXT PRIMARY KEY,
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            queued_epoch INTEGER NOT NULL,
            claimed_until INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            sent_epoch INTEGER,
            last_error TEXT
        )""",
        "CREATE INDEX alert_queue_pending ON alert_queue (sent_epoch, claimed_until)",
    ],
    # 11: SSH credentials that become root through sudo (issue 15 item 2). Without it the agent
    # could only log in as root itself, and the SSH hardening runbooks (PermitRootLogin no) then
    # locked the healer out. ``sudo`` is not secret; a become password lives in the sealed
    # secret with the login password or key.
    ["ALTER TABLE credentials ADD COLUMN sudo INTEGER NOT NULL DEFAULT 0"],
    # 12: BitLocker recovery keys escrowed in the vault, and per-host WinRM trust (issue 15
    # items 3 and 4). ``key_escrow.secret_enc`` is a vault token bound to its site, appliance
    # and row (api/escrow.py), never plaintext; one row per (site, host, protector), so a resent
    # upload is the same escrow. A WinRM credential names the CA that signs its listener's
    # certificate (``ca_bundle``, PEM) or pins the leaf (``cert_thumbprint``, SHA-256 hex), and
    # how the agent authenticates (``auth``: ntlm, kerberos; basic only towards a lab host).
    [
        """CREATE TABLE key_escrow (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            appliance_id TEXT NOT NULL,
            host_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            protector_id TEXT NOT NULL,
            secret_enc TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (site_id, host_id, protector_id)
        )""",
        "ALTER TABLE credentials ADD COLUMN ca_bundle TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE credentials ADD COLUMN cert_thumbprint TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE credentials ADD COLUMN auth TEXT NOT NULL DEFAULT 'ntlm'",
    ],
    # 13: agent updates (issue 16 item 6, api/updates.py). ``agent_releases``: the signed
    # osiris.release/1 documents (with a version) rollouts name, one build per version, never
    # replaced. A rollout is an operator's decision to move named sites to one release; each
    # appliance's signed update_agent order is a row of ``orders``, tied to its rollout by
    # ``rollout_orders``. No state column: each appliance's state is read from the order's
    # signed evidence (requested, switched, healthy | rolled_back), never stored twice.
    [
        """CREATE TABLE agent_releases (
            version TEXT PRIMARY KEY,
            system TEXT NOT NULL,
            envelope TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        """CREATE TABLE rollouts (
            id TEXT PRIMARY KEY,
            version TEXT NOT NULL REFERENCES agent_releases(version),
            system TEXT NOT NULL,
            sites_json TEXT NOT NULL,
            allow_downgrade INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        """CREATE TABLE rollout_orders (
            order_id TEXT PRIMARY KEY REFERENCES orders(id),
            rollout_id TEXT NOT NULL REFERENCES rollouts(id),
            site_id TEXT NOT NULL,
            appliance_id TEXT NOT NULL
        )""",
        "CREATE INDEX rollout_orders_rollout ON rollout_orders (rollout_id)",
        "CREATE INDEX rollout_orders_appliance ON rollout_orders (appliance_id)",
    ],
    # 14: alert routes per partner and per site, one delivery row per (incident, route, event,
    # escalation step), SLA timers per partner and severity (issue 16 item 3). A route's URL,
    # signing secret or PagerDuty routing key is a vault token (``secret_enc``), never plaintext;
    # ``target`` is what operators see (addresses, or the URL's scheme and host). An incident's
    # ``sla_level`` is how many SLA breaches were escalated: the conditional UPDATE that raises
    # it is what makes each breach fire once, whichever server sees it first.
    [
        """CREATE TABLE alert_routes (
            id TEXT PRIMARY KEY,
            partner_id TEXT REFERENCES partners(id),
            site_id TEXT REFERENCES sites(id),
            name TEXT NOT NULL,
            preset TEXT NOT NULL,
            level INTEGER NOT NULL DEFAULT 0,
            target TEXT NOT NULL,
            secret_enc TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )""",
        "CREATE INDEX alert_routes_scope ON alert_routes (partner_id, site_id)",
        """CREATE TABLE alert_deliveries (
            id TEXT PRIMARY KEY,
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            route_id TEXT NOT NULL,
            route_name TEXT NOT NULL,
            preset TEXT NOT NULL,
            event TEXT NOT NULL,
            step INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            claimed_until INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            last_error TEXT,
            created_epoch INTEGER NOT NULL,
            sent_epoch INTEGER,
            UNIQUE (incident_id, route_id, event, step)
        )""",
        "CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_attempt_at)",
        """CREATE TABLE partner_sla (
            partner_id TEXT NOT NULL REFERENCES partners(id),
            severity TEXT NOT NULL,
            ack_within_s INTEGER NOT NULL,
            PRIMARY KEY (partner_id, severity)
        )""",
        "ALTER TABLE incidents ADD COLUMN sla_level INTEGER NOT NULL DEFAULT 0",
    ],
    # 15: the learning loop (issue 16 item 5; osiris_server/learning.py). A pattern is the
    # normalised signature of an L2 outcome (osiris_core/pattern.py), named by the id of the L1
    # rule it would become; one outcome row per evidence bundle (the bundle hash is the key, so
    # a resent bundle counts once): tier L2 before promotion, L1 (the promoted rule firing)
    # after. The learning_candidates table of migration 1 goes: nothing but tests wrote it.
    [
        """CREATE TABLE learning_patterns (
            id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            check_id TEXT NOT NULL,
            detect_runbook_id TEXT NOT NULL,
            runbook_id TEXT NOT NULL,
            params_json TEXT NOT NULL,
            shape_json TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT,
            canary_json TEXT NOT NULL DEFAULT '[]',
            soak_s INTEGER NOT NULL DEFAULT 0,
            promoted_at TEXT,
            fleet_at TEXT,
            disabled_at TEXT
        )""",
        """CREATE TABLE learning_outcomes (
            bundle_hash TEXT PRIMARY KEY,
            pattern_id TEXT NOT NULL REFERENCES learning_patterns(id),
            site_id TEXT NOT NULL,
            appliance_id TEXT NOT NULL,
            tier TEXT NOT NULL,
            success INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX learning_outcomes_pattern ON learning_outcomes (pattern_id, tier, at)",
        "DROP TABLE learning_candidates",
    ],
    # 16: one severity scale (issue 16 item 1, osiris_core/severity.py). Stored incidents said
    # info/warning/critical, the agent's own word riding along in details.agent_severity; they
    # take the agent's word where it gave one, else info -> low and warning -> medium. Each
    # partner gets an alert threshold on the same scale (default high: high and critical alert).
    # With it, the appliance watchdog's schema (issue 16 item 2).
    [
        {
            "sqlite": "UPDATE incidents SET severity = CASE"
            " WHEN json_extract(details_json, '$.agent_severity')"
            " IN ('low', 'medium', 'high', 'critical')"
            " THEN json_extract(details_json, '$.agent_severity')"
            " WHEN severity = 'info' THEN 'low' ELSE 'medium' END"
            " WHERE severity IN ('info', 'warning')",
            "postgresql": "UPDATE incidents SET severity = CASE"
            " WHEN (details_json::jsonb ->> 'agent_severity')"
            " IN ('low', 'medium', 'high', 'critical')"
            " THEN (details_json::jsonb ->> 'agent_severity')"
            " WHEN severity = 'info' THEN 'low' ELSE 'medium' END"
            " WHERE severity IN ('info', 'warning')",
        },
        "ALTER TABLE partners ADD COLUMN alert_threshold TEXT NOT NULL DEFAULT 'high'",
        # The watchdog (osiris_server/watchdog.py): per-site thresholds (missed check-ins; host
        # silence in minutes, 0 = off), the shared tick that decides when silence started to
        # count, at most one open watchdog incident per subject, and a host's newest evidence
        # found by index.
        "ALTER TABLE sites ADD COLUMN watchdog_missed_checkins INTEGER NOT NULL DEFAULT 3",
        "ALTER TABLE sites ADD COLUMN watchdog_host_silent_min INTEGER NOT NULL DEFAULT 1440",
        """CREATE TABLE watchdog_state (
            name TEXT PRIMARY KEY,
            tick_epoch INTEGER NOT NULL,
            since_epoch INTEGER NOT NULL,
            ticked_by TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX incidents_watchdog_open ON incidents (site_id, appliance_id,"
        " host_id, kind) WHERE status = 'open' AND kind IN ('appliance_silent', 'host_silent')",
        "CREATE INDEX evidence_host ON evidence (site_id, host_id, received_at)",
    ],
    # Release keys (issue 16 item 6): the key id of the release key an appliance pinned at
    # enrolment (NULL: enrolled before release keys; it trusts the order key for releases), so
    # a rollout sends each appliance a release envelope it can verify (api/updates.py).
    ["ALTER TABLE appliances ADD COLUMN release_key_id TEXT"],
    # WORM copy (issue 17 item 2, osiris_server/worm.py): one row per object put (or to put) in
    # the S3 Object Lock bucket, keyed by its content-addressed object key, so an interrupted
    # upload resumes and a re-run duplicates nothing. ``worm_state`` holds the retention
    # high-water mark: once objects went up locked for N years, a config asking fewer is refused.
    [
        """CREATE TABLE worm_objects (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            first_index INTEGER,
            last_index INTEGER,
            site_id TEXT,
            retain_until TEXT,
            version_id TEXT,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            uploaded_at TEXT
        )""",
        "CREATE INDEX worm_objects_state ON worm_objects (state, kind, created_at)",
        """CREATE TABLE worm_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ],
    # tsa_anchors (issue 17 item 1, osiris_server/tsa.py): RFC 3161 timestamps over signed
    # checkpoints. ``checkpoint_sha256`` is the sha256 hex of the checkpoint BODY bytes (what was
    # timestamped); ``token`` is the DER TimeStampResp as the TSA sent it (a .tsr file), checked
    # against the configured TSA CA before it is stored. One token per (size, TSA): the unique
    # index is what stops two server processes storing two.
    [
        """CREATE TABLE tsa_anchors (
            id TEXT PRIMARY KEY,
            checkpoint_size INTEGER NOT NULL,
            checkpoint_sha256 TEXT NOT NULL,
            token BLOB NOT NULL,
            tsa_url TEXT NOT NULL,
            gen_time TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX tsa_anchors_size_tsa ON tsa_anchors (checkpoint_size, tsa_url)",
    ],
    # packets (issue 17 item 3, osiris_server/api/packets.py): the server's packet store. One row
    # per packet zip, keyed by its sha256 (an upload of the same bytes is a no-op); the file is
    # ``<data>/packets/<sha256>.zip`` (``path`` relative to the data dir); WORM and the portal
    # read it.
    [
        """CREATE TABLE packets (
            sha256 TEXT PRIMARY KEY,
            site_id TEXT NOT NULL,
            period_start TEXT,
            period_end TEXT,
            month TEXT,
            bytes INTEGER,
            path TEXT,
            stored_at TEXT,
            stored_by TEXT
        )""",
        "CREATE INDEX packets_site ON packets (site_id, period_start)",
    ],
    # retention (issue 17 item 3, osiris_server/retention.py): a legal hold per site (one row
    # while held; who, when, why; the audit keeps the history), one row per prune (the index
    # range, how many bundles, sha256 over their hashes, the WORM keys that hold them, who and
    # when; ``log_done_at`` once the log's entry bytes are blanked), and on each evidence row the
    # prune that removed its body (NULL: stored). The index row itself stays: chain order and
    # proofs need it.
    [
        """CREATE TABLE legal_holds (
            site_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            held_by TEXT NOT NULL,
            held_at TEXT NOT NULL
        )""",
        """CREATE TABLE retention_prunes (
            id INTEGER PRIMARY KEY,
            first_index INTEGER NOT NULL,
            last_index INTEGER NOT NULL,
            count INTEGER NOT NULL,
            hashes_sha256 TEXT NOT NULL,
            worm_keys TEXT NOT NULL,
            retention_years INTEGER NOT NULL,
            now_at TEXT NOT NULL,
            pruned_by TEXT NOT NULL,
            pruned_at TEXT NOT NULL,
            log_done_at TEXT
        )""",
        "ALTER TABLE evidence ADD COLUMN pruned_id INTEGER",
    ],
    # the clinic portal (issue 19, osiris_server/portal/): contacts an operator registered per
    # site (one live row per site and address), single-use sign-in links and sessions (both
    # stored as SHA-256 of the secret; in the database, so every worker and a restart see them),
    # and every sign-in request (for the per-address and per-source limits across workers).
    # partner_branding: a partner's display name, colour and logo, apart from partners so that
    # a logo's bytes never ride along a partner listing.
    [
        """CREATE TABLE portal_contacts (
            id TEXT PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            email TEXT NOT NULL,
            name TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE UNIQUE INDEX portal_contacts_live ON portal_contacts (site_id, email)"
        " WHERE revoked_at IS NULL",
        "CREATE INDEX portal_contacts_email ON portal_contacts (email)",
        """CREATE TABLE portal_links (
            token_hash TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL REFERENCES portal_contacts(id),
            site_id TEXT NOT NULL,
            created_epoch INTEGER NOT NULL,
            expires_epoch INTEGER NOT NULL,
            used_epoch INTEGER,
            source TEXT NOT NULL
        )""",
        """CREATE TABLE portal_sessions (
            token_hash TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL REFERENCES portal_contacts(id),
            site_id TEXT NOT NULL,
            created_epoch INTEGER NOT NULL,
            seen_epoch INTEGER NOT NULL,
            expires_epoch INTEGER NOT NULL,
            ended_epoch INTEGER,
            source TEXT NOT NULL
        )""",
        "CREATE INDEX portal_sessions_contact ON portal_sessions (contact_id)",
        """CREATE TABLE portal_requests (
            id INTEGER PRIMARY KEY,
            at_epoch INTEGER NOT NULL,
            source TEXT NOT NULL,
            email_hash TEXT NOT NULL
        )""",
        "CREATE INDEX portal_requests_at ON portal_requests (at_epoch)",
        """CREATE TABLE partner_branding (
            partner_id TEXT PRIMARY KEY REFERENCES partners(id),
            display_name TEXT,
            colour TEXT,
            logo_type TEXT,
            logo BLOB,
            logo_sha256 TEXT,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ],
]


_PG_TYPES = [
    # SQLite's rowid alias: an id the database assigns on insert
    (
        re.compile(r"\bINTEGER PRIMARY KEY\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    # epochs, sizes, log indexes and counters must not overflow int4
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
]


def ddl(step: Step, dialect: str) -> str:
    """The statement ``step`` is on ``dialect`` ("sqlite" | "postgresql")."""
    if isinstance(step, dict):
        return step[dialect]
    if dialect == "sqlite":
        return step
    out = step
    for pattern, repl in _PG_TYPES:
        out = pattern.sub(repl, out)
    return out


_SCHEMA_VERSION = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
    " applied_at TEXT)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY,"
    " applied_at TEXT)",
}


def current_version(tx: Any, dialect: str) -> int:
    """The schema version recorded in the database (0: none yet); creates the table."""
    tx.execute(_SCHEMA_VERSION[dialect])
    return int(tx.scalar("SELECT MAX(version) FROM schema_version") or 0)


def _too_new(version: int) -> SchemaTooNew:
    return SchemaTooNew(
        f"database schema version {version} is newer than this osiris-server knows "
        f"({len(MIGRATIONS)}); upgrade osiris-server"
    )


def migrate(engine: Any, upto: int | None = None) -> int:
    """Apply every migration newer than the database (``upto``: stop at that version — tests
    build databases of released versions with it); returns the resulting version."""
    target = len(MIGRATIONS) if upto is None else upto
    with engine.write() as tx:
        version = current_version(tx, engine.dialect)
    if version > len(MIGRATIONS):
        raise _too_new(version)
    for n in range(version + 1, target + 1):
        with engine.write() as tx:
            if current_version(tx, engine.dialect) >= n:  # another process migrated meanwhile
                continue
            for step in MIGRATIONS[n - 1]:
                tx.execute(ddl(step, engine.dialect))
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (n, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
    return int(engine.scalar("SELECT MAX(version) FROM schema_version") or 0)
