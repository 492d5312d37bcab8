# Nodes shared by the nixosTest checks (nix/tests/vm/*.nix): the appliance (iso/common.nix, the
# configuration the live ISO and the installed system share; the VM has no TPM2/LUKS disk, so
# installed.nix's boot and file systems are not what boots here) and a Central Command server
# with a test CA. Wired into flake.nix `checks`; never built or run on the machine that wrote
# them (no nixpkgs there) — nix/README.md.
{ self, pkgs }:
let
  # A throwaway CA and a server certificate for the name `server` (test only, in the store).
  tls = pkgs.runCommand "osiris-vm-test-tls" { nativeBuildInputs = [ pkgs.openssl ]; } ''
    mkdir -p $out
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj /CN=osiris-vm-test-ca -keyout ca.key -out $out/ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=server \
      -keyout $out/server.key -out server.csr
    printf 'subjectAltName=DNS:server\n' > ext
    openssl x509 -req -in server.csr -CA $out/ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile ext -out $out/server.pem
  '';
  osiris = self.packages.${pkgs.stdenv.hostPlatform.system}.osiris;
in
{
  inherit tls osiris;
  serverUrl = "https://server:8443";

  appliance = { lib, ... }: {
    imports = [ ../../../iso/common.nix ];
    services.osiris-agent.package = osiris;
    osiris.appliance.serverUrl = "https://server:8443";
    osiris.appliance.dnsResolvers = [ "192.168.1.254" ];
    services.osiris-agent.settings.enrolment.provision_dirs = [ "/var/lib/osiris-provision/inbox" ];
    services.osiris-agent.egress.lanPrefixes = [ "192.168.1.0/24" ];
    systemd.tmpfiles.rules = [ "d /var/lib/osiris-provision/inbox 0700 osiris osiris - -" ];
    environment.systemPackages = [ osiris pkgs.iproute2 pkgs.jq ];
    # the test driver's shell needs no network; keep the VM small
    virtualisation.memorySize = 2048;
    services.clamav.daemon.enable = lib.mkForce false; # signatures need the internet
    services.clamav.updater.enable = lib.mkForce false;
  };

  server = { ... }: {
    imports = [ self.nixosModules.osiris-server ];
    services.osiris-server = {
      enable = true;
      package = osiris;
      listen = "0.0.0.0:8443";
      tls.certFile = "${tls}/server.pem";
      tls.keyFile = "${tls}/server.key";
      openFirewall = true;
    };
    environment.systemPackages = [ osiris pkgs.jq ];
  };
}
