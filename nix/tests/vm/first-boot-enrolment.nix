# (iv) First-boot enrolment from a provisioning file: a claim code made with the `osiris` CLI on
# the server node, osiris-provision.toml (server_url, claim_code, server_ca) put in the agent's
# provisioning dir; the agent enrols and checks in, and the file is gone.
{ self, pkgs }:
let nodes = import ./nodes.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "osiris-first-boot-enrolment";
  nodes.server = nodes.server;
  nodes.appliance = nodes.appliance;
  testScript = ''
    import json

    server.wait_for_unit("osiris-server.service")
    server.wait_for_open_port(8443)
    token = server.succeed("jq -r .admin_token /var/lib/osiris-server/initial-admin.json").strip()
    env = f"OSIRIS_SERVER=${nodes.serverUrl} OSIRIS_TOKEN={token} SSL_CERT_FILE=${nodes.tls}/ca.pem"
    server.succeed(f"{env} osiris site add 'Clinic A' --id clinic-a --json")
    code = json.loads(server.succeed(f"{env} osiris provision create --site clinic-a --no-qr --json"))["code"]

    appliance.wait_for_unit("osiris-agent.service")
    ca = appliance.succeed("cat ${nodes.tls}/ca.pem")
    prov = f'server_url = "${nodes.serverUrl}"\nclaim_code = "{code}"\nserver_ca = """\n{ca}"""\n'
    appliance.succeed(
        "install -m 0600 -o osiris -g osiris /dev/stdin "
        "/var/lib/osiris-provision/inbox/osiris-provision.toml <<'EOF'\n" + prov + "EOF"
    )
    # the agent enrols, checks in, and removes the file (the claim code is single-use)
    appliance.wait_until_succeeds(
        "test ! -e /var/lib/osiris-provision/inbox/osiris-provision.toml", timeout=180
    )

    def checked_in(_):
        rows = json.loads(server.succeed(f"{env} osiris appliance list --site clinic-a --json"))
        return len(rows) == 1 and rows[0].get("last_seen_at") is not None

    retry(checked_in, timeout_seconds=180)
    [enrolled] = json.loads(server.succeed(f"{env} osiris appliance list --site clinic-a --json"))
    # the claim code is used up (single-use), by this appliance
    claims = json.loads(server.succeed(f"{env} osiris provision list --json"))
    [claim] = [c for c in claims if c["site_id"] == "clinic-a"]
    assert claim["used_at"] is not None and claim["appliance_id"] == enrolled["id"], claim
    # no secret of the provisioning file in the journal
    assert code not in appliance.succeed("journalctl -b --no-pager")
  '';
}
