# osiris: one Python distribution, three console scripts (osiris-server, osiris-agent, osiris).
#
# Build from a checkout:  nix-build -E 'with import <nixpkgs> {}; callPackage ./nix/package.nix {}'
# The NixOS modules default `package` to this file (callPackage), so the units always run the
# real program — the earlier module's default was a placeholder script (lessons.md C).
{ lib
, python3Packages
, bash
, coreutils
}:

python3Packages.buildPythonApplication {
  pname = "osiris";
  version = "0.1.0"; # keep in step with pyproject.toml [project] version
  pyproject = true;

  # The repository root, minus things that must not end up in the store path. osiris_lab/ (the
  # lab simulators, which listen on ports, and the demo's orchestration) is left out: this is the
  # package the appliance installs, and the appliance never contains the lab (DESIGN §6). Without
  # the directory setuptools simply finds no osiris_lab package; `osiris demo` then says it is
  # not installed here. tests/test_nix.py evaluates this filter over the checkout.
  src = lib.cleanSourceWith {
    src = ./..;
    filter = path: type:
      let base = baseNameOf (toString path); in
      !(builtins.elem base [
          ".venv" ".git" "result" "__pycache__" ".pytest_cache" ".ruff_cache"
          "osiris_lab"
        ]
        || lib.hasSuffix ".egg-info" base);
  };

  build-system = with python3Packages; [ setuptools wheel ];

  # pyproject.toml pins textual==8.2.8; nixpkgs ships whatever its release has. The console is
  # tested against the pin, so relax the check rather than fail the build on a patch bump.
  pythonRelaxDeps = [ "textual" ];

  dependencies = with python3Packages; [
    textual
    click
    httpx
    pynacl
    sqlite-utils
    pywinrm
    paramiko
    rich
    jinja2 # report.html of `osiris packet build`
    weasyprint # report.pdf
    rfc3161-client # checkpoint.tsr (osiris_core/timestamp.py)
    dnspython # egress allowlist refresh through the configured resolvers only
    cryptography # mTLS: the client CA and the appliance's CSR
  ];

  # Runbook scripts are run with `bash FILE`; make sure the interpreter is in the closure.
  makeWrapperArgs = [ "--prefix" "PATH" ":" (lib.makeBinPath [ bash coreutils ]) ];

  # The full suite needs sshd, sockets on 127.0.0.1 and nix-instantiate; it runs in CI
  # (`make test`), not inside the sandbox. An import check still catches a broken package.
  doCheck = false;
  pythonImportsCheck = [ "osiris_core" "osiris_agent" "osiris_server" "osiris_tui" ];

  # Belt and braces for the filter above: fail the build if any lab module reached the output.
  postInstall = ''
    if [ -n "$(find "$out" -name 'osiris_lab*' -print -quit)" ]; then
      echo "osiris_lab must not be part of the appliance package" >&2
      exit 1
    fi
  '';

  meta = {
    description = "Keep small healthcare clinics HIPAA-compliant, heal drift, and prove it with signed evidence";
    license = lib.licenses.unfree; # LicenseRef-Proprietary in pyproject.toml
    mainProgram = "osiris";
    platforms = lib.platforms.linux;
  };
}
