# Stub `nixpkgs` flake input for reading flake.nix's outputs without nixpkgs (tests/test_nix_flake.py):
# lib = stub-lib + genAttrs + a nixosSystem that returns its arguments (so the test sees which
# modules each configuration is made of) and a fake toplevel; legacyPackages = stub-pkgs plus
# testers.runNixOSTest returning the test definition itself (name, nodes, testScript) so the
# test can read and compile each VM test's script. Nothing here builds or boots anything.
let
  lib = import ./stub-lib.nix;
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  pkgsFor = system: import ./stub-pkgs.nix // {
    stdenv.hostPlatform.system = system;
    testers.runNixOSTest = test: test // { isNixOSTest = true; };
    mkShell = args: args;
  };
in
{
  lib = lib // {
    inherit genAttrs;
    nixosSystem = args: args // {
      config.system.build = {
        toplevel = {
          drvPath = "/nix/store/00000000000000000000000000000000-stub-toplevel.drv";
          fromModules = map (m: if builtins.isPath m then toString m else "module") args.modules;
        };
        isoImage = "/nix/store/00000000000000000000000000000000-stub-iso";
      };
    };
  };
  legacyPackages = genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
}
