# Generated from osiris_agent/config.py by `python -m osiris_agent.nixgen`; do not edit by
# hand (tests/test_nix.py regenerates it and fails on any difference).
#
# One option per key of /etc/osiris/agent.toml: settings.<section>.<key>. null = key left
# out of the file, so the agent applies its own (possibly derived) default.
{ lib }:
let
  inherit (lib) mkOption types;
in
{
  server = {
    url = mkOption {
      type = types.str;
      description = "Central Command base URL (the agent only ever connects out to it). http:// only to 127.0.0.1/localhost or with agent.lab = true. Required.";
    };
    ca_file = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "PEM bundle of CAs trusted for the server's TLS certificate; unset = system CAs. null = unset.";
    };
    client_cert = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "PEM client certificate presented to the server (mTLS). Unset: `<state_dir>/client.pem` if enrolment wrote one, else none. null = unset.";
    };
    client_key = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Private key of `client_cert` (mode 0600, checked). Unset: `<state_dir>/client.key`. null = unset.";
    };
  };
  agent = {
    state_dir = mkOption {
      type = types.str;
      default = "/var/lib/osiris";
      description = "Directory holding keys, token, outbox, evidence chain and receipts (mode 0700).";
    };
    key_file = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Ed25519 key that signs evidence (written by `osiris-agent enroll`, mode 0600). null = `<agent.state_dir>/appliance.key`.";
    };
    cosign_key_file = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Separate Ed25519 key with which the appliance cosigns log checkpoints as a witness. null = `<agent.state_dir>/cosign.key`.";
    };
    token_file = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Appliance bearer token (`oak_…`) received at enrollment, mode 0600. null = `<agent.state_dir>/token`.";
    };
    checkin_interval_s = mkOption {
      type = types.ints.between 5 86400;
      default = 60;
      description = "Seconds between check-ins (the server may ask for sooner while orders wait).";
    };
    jitter_pct = mkOption {
      type = types.ints.between 0 50;
      default = 10;
      description = "Random spread of each wait, in PERCENT of the interval (10 = ±10 %, so 60 s becomes 54..66 s). Keeps a fleet from checking in in lockstep.";
    };
    order_ttl_s = mkOption {
      type = types.ints.between 60 86400;
      default = 900;
      description = "Longest order lifetime the agent accepts; older orders are discarded as `expired`.";
    };
    scan_interval_s = mkOption {
      type = types.nullOr (types.ints.between 5 86400);
      default = null;
      description = "Seconds between drift scans of each check on every target. Unset = the catalogue's own cadence (300 s per check, 3600 s for patching). At least 60 (at least 5 with `agent.lab = true`, for demos). null = unset.";
    };
    switch_command = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "How an `update_agent` order switches the appliance. Empty (NixOS): the agent writes the switch request and starts the root unit `osiris-switch-system.service`, which re-checks the release signature. Otherwise a program (and its first arguments) speaking the same protocol: `switch REQUEST`, `current`, `health` — only the lab's stand-in switch (`python -m osiris_lab.standin_switch`) does, for demos and tests.";
    };
    update_health_checkins = mkOption {
      type = types.ints.between 1 100;
      default = 3;
      description = "After an update's switch, this many failed check-ins IN A ROW roll it back (fewer are tolerated and logged: a network blip must not undo an update). Cycle errors or a wrong version roll back at once. 1 = roll back at the first failed check-in.";
    };
    update_guard_deadline_s = mkOption {
      type = types.ints.between 60 86400;
      default = 900;
      description = "Seconds the ROOT update guard (`osiris-update-guard.timer` on NixOS) waits for the new agent to confirm a healthy cycle after a switch before it rolls back to the system recorded before it (a build whose agent cannot even start). Keep it above `update_health_checkins` check-in intervals.";
    };
    lab = mkOption {
      type = types.bool;
      default = false;
      description = "Lab/demo mode: allows plain http:// URLs to hosts other than localhost. Never set on a clinic appliance.";
    };
    status_dir = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Where the agent publishes `status.json`, the read-only snapshot `osiris tui --local` shows (no key, token or credential; group-readable). null = `<agent.state_dir>/status`.";
    };
  };
  enrolment = {
    provision_dirs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Directories searched for `osiris-provision.toml` (a USB stick) while not enrolled; the file is read once, then wiped.";
    };
    mac_poll = mkOption {
      type = types.bool;
      default = false;
      description = "While not enrolled, poll `GET /provision/{mac}` until an operator approves this appliance's requester fingerprint.";
    };
    poll_interval_s = mkOption {
      type = types.ints.between 5 3600;
      default = 60;
      description = "Seconds between first-boot enrolment attempts.";
    };
  };
  egress = {
    hosts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Host names the agent resolves (through `resolvers` only) into the allowlist's nft sets; a failed refresh keeps the old set and raises an alert.";
    };
    refresh_interval_s = mkOption {
      type = types.ints.between 60 86400;
      default = 900;
      description = "Seconds between allowlist refreshes.";
    };
    entry_timeout_s = mkOption {
      type = types.ints.between 300 604800;
      default = 3600;
      description = "Lifetime of a resolved address in the allowlist: a DNS outage longer than this closes the host (fail closed).";
    };
    resolvers = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "The clinic's DNS resolvers (IP addresses): the only DNS destinations the NixOS module's egress allowlist permits, and the system's nameservers.";
    };
  };
  window = {
    days = mkOption {
      type = types.listOf types.str;
      default = [ "mon" "tue" "wed" "thu" "fri" "sat" "sun" ];
      description = "Days on which the maintenance window opens (`mon` … `sun`); empty = never.";
    };
    start = mkOption {
      type = types.str;
      default = "02:00";
      description = "Local wall-clock time at which the window opens, in `window.timezone`. A start skipped by a DST jump opens the window by the jump later; a repeated one, at its first occurrence.";
    };
    duration_min = mkOption {
      type = types.ints.between 1 1440;
      default = 120;
      description = "Length of the window in elapsed minutes; it may run past midnight into the next day.";
    };
    timezone = mkOption {
      type = types.str;
      default = "UTC";
      description = "IANA time zone of the clinic, e.g. `America/New_York`.";
    };
    allow_disruptive_outside = mkOption {
      type = types.bool;
      default = false;
      description = "Run disruptive orders and runbooks outside the window instead of deferring them.";
    };
  };
  deployment = {
    mode = mkOption {
      type = types.enum [ "direct" "reseller" ];
      default = "direct";
      description = "`direct` (the MSP runs the server) or `reseller` (a reseller operates the site).";
    };
    reseller_id = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Reseller identifier recorded in every evidence bundle; required in reseller mode. null = unset.";
    };
  };
  reseller = {
    syslog_target = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Also send alerts as syslog to `udp://host[:port]` or `tcp://host[:port]` (default port 514). null = unset.";
    };
    webhook_url = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Also POST alerts to the reseller's RMM webhook. http:// only to 127.0.0.1/localhost or with agent.lab = true. null = unset.";
    };
  };
  ntp = {
    servers = mkOption {
      type = types.listOf types.str;
      default = [ "time.cloudflare.com" "time.google.com" "pool.ntp.org" ];
      description = "SNTP servers (`host` or `host:port`) queried before signing evidence.";
    };
    max_skew_ms = mkOption {
      type = types.ints.between 1 3600000;
      default = 5000;
      description = "Largest tolerated |median offset| of the local clock, in milliseconds.";
    };
    min_good = mkOption {
      type = types.ints.between 1 16;
      default = 2;
      description = "How many servers must give a valid answer for the clock to count as checked.";
    };
    timeout_ms = mkOption {
      type = types.ints.between 100 30000;
      default = 2000;
      description = "How long to wait for each server's answer, in milliseconds.";
    };
  };
  evidence = {
    keep_last = mkOption {
      type = types.ints.between 1 10000000;
      default = 200;
      description = "Local evidence pruning keeps at least this many newest bundles.";
    };
    min_age_days = mkOption {
      type = types.ints.between 0 36500;
      default = 90;
      description = "…and never prunes a bundle younger than this many days.";
    };
  };
  outbox = {
    max_entries = mkOption {
      type = types.ints.between 100 100000000;
      default = 100000;
      description = "Most bundles the outbox holds while the server is unreachable.";
    };
    max_bytes = mkOption {
      type = types.ints.between 1048576 1099511627776;
      default = 1073741824;
      description = "Most bytes of queued bundles (default 1 GiB).";
    };
  };
  healing = {
    l2_enabled = mkOption {
      type = types.bool;
      default = false;
      description = "Enable the L2 planner (an LLM proposes a catalogue runbook; guarded, never free shell). Needs `l2_base_url` and `l2_model`.";
    };
    l2_base_url = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Base URL of the L2 model API. http:// only to 127.0.0.1/localhost or with agent.lab = true. null = unset.";
    };
    l2_model = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "Model name sent to the L2 API. null = unset.";
    };
    l2_key_file = mkOption {
      type = types.nullOr (types.str);
      default = null;
      description = "File holding the L2 API key (mode 0600); unset for keyless local models. null = unset.";
    };
    l2_min_confidence = mkOption {
      type = types.ints.between 0 100;
      default = 70;
      description = "Least confidence, in PERCENT, for an L2 plan to run; below it the issue escalates to L3.";
    };
  };
}
