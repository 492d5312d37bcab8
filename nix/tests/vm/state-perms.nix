# (ii) Secrets in /var/lib/osiris are 0600 and the directory 0700 osiris.
{ self, pkgs }:
let nodes = import ./nodes.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "osiris-state-perms";
  nodes.appliance = nodes.appliance;
  testScript = ''
    appliance.wait_for_unit("osiris-agent.service")
    # the agent makes its key on first start
    appliance.wait_until_succeeds("test -s /var/lib/osiris/appliance.key", timeout=120)
    assert appliance.succeed("stat -c '%a %U %G' /var/lib/osiris").strip() == "700 osiris osiris"
    assert appliance.succeed("stat -c '%a %U' /var/lib/osiris/appliance.key").strip() == "600 osiris"
    # nothing under the state dir is readable by group or others
    assert appliance.succeed("find /var/lib/osiris -perm /077 -type f").strip() == ""
  '';
}
