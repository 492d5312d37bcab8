# Osiris: the package, the NixOS modules and the appliance image.
#
# What this flake holds today (issue 18 is open; see nix/README.md for what was evaluated where):
#   packages.<system>.osiris          the Python distribution WITHOUT osiris_lab (nix/package.nix)
#   nixosModules.osiris-agent         services.osiris-agent   (nix/modules/osiris-agent.nix)
#   nixosModules.osiris-server        services.osiris-server  (nix/modules/osiris-server.nix)
#   nixosModules.appliance            services.osiris-appliance (nix/modules/osiris-appliance.nix)
#   nixosConfigurations.installer     the appliance ISO (iso/appliance.nix) with example values
#   devShells.<system>.default        Python 3 + nix tooling to work on the repository
# Not yet here: the installed (LUKS2 + TPM2) appliance configuration, its unattended installer
# and the nixosTest checks; `checks` holds only the module evaluation below.
{
  description = "Osiris: HIPAA drift detection, healing and signed evidence for small clinics";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      # Example site values for the image built by `nix build .#installer`: an MSP builds its
      # own with its server URL and the clinic's resolvers (iso/README.md).
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

      nixosConfigurations.installer = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ ./iso/appliance.nix withPackage exampleSite ];
      };

      # Evaluating the installer's configuration runs every module assertion (egress needs
      # resolvers, no plain-HTTP server, ...) against real nixpkgs.
      checks = forAll (system: pkgs: {
        installer-evaluates = pkgs.writeText "osiris-installer-toplevel"
          self.nixosConfigurations.installer.config.system.build.toplevel.drvPath;
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
