# (iii) The egress table is loaded: output policy drop, DNS only to the resolvers' sets.
{ self, pkgs }:
let nodes = import ./nodes.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "osiris-egress-table";
  nodes.appliance = nodes.appliance;
  testScript = ''
    appliance.wait_for_unit("nftables.service")
    table = appliance.succeed("nft list table inet osiris_egress")
    print(table)
    assert "policy drop" in table, table
    assert "set dns_v4" in table and "set dns_v6" in table, table
    assert "192.168.1.254" in table, table
    # the baseline the host runs is the one RB-NIX-FW-001 pins
    appliance.succeed("test -s /etc/osiris/nftables-baseline.nft.sha256")
    # DNS may go to the resolver, not to another host on the same link (both on-link, so
    # routing is not the difference: the output policy is; a dropped send fails with EPERM)
    appliance.succeed("bash -c 'echo x > /dev/udp/192.168.1.254/53'")
    appliance.fail("bash -c 'echo x > /dev/udp/192.168.1.99/53'")
  '';
}
