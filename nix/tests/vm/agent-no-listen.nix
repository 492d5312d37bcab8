# (i) The agent starts and holds no listening socket: the appliance never listens.
{ self, pkgs }:
let nodes = import ./nodes.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "osiris-agent-no-listen";
  nodes.appliance = nodes.appliance;
  testScript = ''
    appliance.wait_for_unit("osiris-agent.service")
    appliance.sleep(5)
    appliance.succeed("systemctl is-active osiris-agent.service")
    listening = appliance.succeed("ss -Htlnup")
    print(listening)
    assert "osiris-agent" not in listening and "python" not in listening, listening
    udp = appliance.succeed("ss -Hulnp")
    assert "osiris-agent" not in udp and "python" not in udp, udp
    # the agent runs as osiris, not root
    assert appliance.succeed("systemctl show -p User --value osiris-agent.service").strip() == "osiris"
  '';
}
