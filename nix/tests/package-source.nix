# Evaluate nix/package.nix's source filter without nixpkgs (tests/test_nix.py).
#
#   nix-instantiate --eval --strict --json nix/tests/package-source.nix \
#     --argstr entriesFile /tmp/entries.json   # [{"path": "/abs/checkout/osiris_lab", "type": "directory"}, …]
#
# `lib.cleanSourceWith` is stubbed to return its arguments and `buildPythonApplication` to
# return the package's attribute set, so `pkg.src.filter` below IS the package's own filter
# function, applied by Nix to each { path, type } the caller lists (absolute paths, as
# cleanSourceWith passes them). The caller walks the checkout and applies what real
# cleanSourceWith does on top: a directory the filter refuses takes everything under it along.
{ entriesFile }:
let
  lib = import ./stub-lib.nix // {
    cleanSourceWith = args: args;
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
    licenses.unfree = "unfree";
    platforms.linux = [ "x86_64-linux" ];
  };
  python3Packages = builtins.listToAttrs (map (n: { name = n; value = n; }) [
    "setuptools" "wheel" "textual" "click" "httpx" "pynacl" "sqlite-utils" "pywinrm" "paramiko"
    "rich"
  ]) // { buildPythonApplication = attrs: attrs; };
  pkg = import ../package.nix {
    inherit lib python3Packages;
    bash = "bash";
    coreutils = "coreutils";
  };
in
{
  root = toString pkg.src.src;
  keep = map (e: pkg.src.filter e.path e.type) (builtins.fromJSON (builtins.readFile entriesFile));
  importsCheck = pkg.pythonImportsCheck;
  postInstall = pkg.postInstall;
}
