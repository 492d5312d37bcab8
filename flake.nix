# Osiris: the package, the NixOS modules, the installed appliance and its installer ISO.
#
# What this flake holds (see nix/README.md for exactly what was parsed, evaluated and run where):
#   packages.<system>.osiris          the Python distribution WITHOUT osiris_lab (nix/package.nix)
#   packages.<system>.installer       the installer ISO (= nixosConfigurations.installer's isoImage)
#   nixosModules.osiris-agent         services.osiris-agent   (nix/modules/osiris-agent.nix)
#   nixosModules.osiris-server        services.osiris-server  (nix/modules/osiris-server.nix)
#   nixosModules.appliance            services.osiris-appliance (nix/modules/osiris-appliance.nix)
#   nixosConfigurations.appliance     the INSTALLED appliance (iso/installed.nix: ESP + LUKS2 root
#                                     unlocked by the TPM2) with example site values
#   nixosConfigurations.installer     the live ISO (iso/appliance.nix) carrying that system's
#                                     closure and `osiris-install` (iso/osiris-install)
#   checks.<system>.*                 both configurations evaluate, and nixosTest VM checks
#                                     (nix/tests/vm/*.nix): no listening agent, state modes,
#                                     egress table, first-boot enrolment, `osiris tui --local`
#   devShells.<system>.default        Python 3 + nix tooling to work on the repository
# None of the nixosTest checks has been built or run yet: no nixpkgs on the machine they were
# written on (nix/README.md "Known gaps").
{
  description = "Osiris: HIPAA drift detection, healing and signed evidence for small clinics";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      # Example site values for the systems built here (`nix build .#installer`): an MSP builds
      # its own with its server URL and the clinic's resolvers (iso/README.md).
      exampleSite = {
        osiris.appliance.serverUrl = "https://cc.example-msp.com";
        osiris.appliance.dnsResolvers = [ "192.168.10.1" ];
      };
      withPackage = { pkgs, ... }: {
        services.osiris-agent.package = self.packages.${pkgs.stdenv.hostPlatform.system}.osiris;
      };
    in
    {
      packages = forAll (system: pkgs: rec {
        osiris = pkgs.callPackage ./nix/package.nix { };
        default = osiris;
        installer = self.nixosConfigurations.installer.config.system.build.isoImage;
      });

      nixosModules = {
        osiris-agent = ./nix/modules/osiris-agent.nix;
        osiris-server = ./nix/modules/osiris-server.nix;
        appliance = ./nix/modules/osiris-appliance.nix;
      };

      # The installed appliance: what osiris-install puts on the disk.
      nixosConfigurations.appliance = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ ./iso/installed.nix withPackage exampleSite ];
      };

      # The installer ISO: the live system plus the installed system's closure.
      nixosConfigurations.installer = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          ./iso/appliance.nix
          withPackage
          exampleSite
          { osiris.installer.system = self.nixosConfigurations.appliance.config.system.build.toplevel; }
        ];
      };

      # Evaluating both configurations runs every module assertion (egress needs resolvers, no
      # plain-HTTP server, ...) against real nixpkgs; the VM tests boot the appliance.
      checks = forAll (system: pkgs:
        let vm = file: import file { inherit self pkgs; }; in {
          installer-evaluates = pkgs.writeText "osiris-installer-toplevel"
            self.nixosConfigurations.installer.config.system.build.toplevel.drvPath;
          appliance-evaluates = pkgs.writeText "osiris-appliance-toplevel"
            self.nixosConfigurations.appliance.config.system.build.toplevel.drvPath;
          vm-agent-no-listen = vm ./nix/tests/vm/agent-no-listen.nix;
          vm-state-perms = vm ./nix/tests/vm/state-perms.nix;
          vm-egress-table = vm ./nix/tests/vm/egress-table.nix;
          vm-first-boot-enrolment = vm ./nix/tests/vm/first-boot-enrolment.nix;
          vm-tech-tui-local = vm ./nix/tests/vm/tech-tui-local.nix;
        });

      devShells = forAll (system: pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: [ ps.pip ps.virtualenv ]))
            pkgs.nix
            pkgs.shellcheck
            pkgs.nftables
          ];
          shellHook = ''
            echo "osiris: make venv && make test (README.md)"
          '';
        };
      });
    };
}
