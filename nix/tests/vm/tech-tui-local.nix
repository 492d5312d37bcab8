# (v) `osiris tui --local` (its non-interactive form, reading only the status snapshot
# /var/lib/osiris-status/status.json) works as user tech, and tech cannot read /var/lib/osiris.
{ self, pkgs }:
let nodes = import ./nodes.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "osiris-tech-tui-local";
  nodes.appliance = nodes.appliance;
  testScript = ''
    appliance.wait_for_unit("osiris-agent.service")
    appliance.wait_until_succeeds("test -s /var/lib/osiris-status/status.json", timeout=180)
    out = appliance.succeed("runuser -u tech -- osiris tui --local </dev/null")
    print(out)
    assert "Traceback" not in out
    appliance.fail("runuser -u tech -- ls /var/lib/osiris")
    appliance.fail("runuser -u tech -- cat /var/lib/osiris/appliance.key")
    # tech has no sudo (no password, and never NOPASSWD)
    appliance.fail("runuser -u tech -- sudo -n true")
  '';
}
