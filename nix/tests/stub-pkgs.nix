# Stub `pkgs` for evaluating the modules without nixpkgs: every package is a fake store path
# string, and the few builders the modules call return one too (their text is kept in
# `written` by eval-module.nix's caller if needed — here they only need to be strings).
let
  store = name: "/nix/store/00000000000000000000000000000000-${name}";
  names = [
    "bash" "coreutils" "gawk" "gnused" "gnugrep" "findutils" "systemd" "util-linux"
    "cryptsetup" "nftables" "getent" "nix" "openssh" "osiris"
    "clamav" "gnutar" "gzip" "dosfstools" "e2fsprogs" "nixos-install-tools" "openssl" "jq"
    "iproute2" "shellcheck"
  ];
in
builtins.listToAttrs (map (n: { name = n; value = store n; }) names) // {
  callPackage = _path: _args: store "osiris";
  writeShellScript = name: _text: store name;
  writeText = name: _text: store name;
  writeShellApplication = { name, ... }: store name;
  runCommand = name: _env: _script: store name;
  python3 = {
    sitePackages = "lib/python3.11/site-packages";
    withPackages = _f: store "python3-env";
  };
}
