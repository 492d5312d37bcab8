# Evaluate one Osiris NixOS module against stub-lib.nix / stub-pkgs.nix, without nixpkgs.
#
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix \
#     --arg modulePath ./nix/modules/osiris-agent.nix \
#     --arg userConfig '{ services.osiris-agent = { enable = true; settings.server.url = "https://cc.example"; }; }'
#
# What it does (a small model of the module system, honest about its limits):
#   - option values = user definition if given, else the option's default, else an error;
#     each value is checked against the stub type's `check`; unknown user options are errors;
#   - `config` is the fixpoint { option values } // otherConfig, passed back into the module;
#   - the module's `config` is resolved: mkIf false drops the attribute, mkForce/mkDefault are
#     unwrapped, mkMerge merges; it does NOT merge with other modules or apply priorities.
# Result: { options = <option values, undefined = null>; config = <resolved config>; failedAssertions = [...]; }
{ modulePath, userConfig ? { }, otherConfig ? { } }:
let
  lib = import ./stub-lib.nix;
  pkgs = import ./stub-pkgs.nix;
  absent = { __absent = true; };
  isAbsent = v: builtins.isAttrs v && v ? __absent;
  typeOf = v: if builtins.isAttrs v then v._type or null else null;
  unwrap = v: if typeOf v == "override" then unwrap v.content else v;

  values = path: opts: user:
    if typeOf opts == "option" then
      let
        v = if !(isAbsent user) then unwrap user
            else if opts ? default then opts.default
            else throw "The option `${path}' is used but not defined.";
      in
      if !(opts ? type) || opts.type.check v then v
      else throw "The option `${path}' is not of type `${opts.type.name}'."
    else
      let
        u = if isAbsent user then { } else user;
        unknown = builtins.filter (n: !(opts ? ${n})) (builtins.attrNames u);
      in
      if unknown != [ ] then throw "The option `${path}.${builtins.head unknown}' does not exist."
      else builtins.mapAttrs (n: o: values "${path}${if path == "" then "" else "."}${n}" o (u.${n} or absent)) opts;

  module = import modulePath;
  result = module { inherit lib pkgs config; modulesPath = "/nixpkgs/nixos/modules"; };
  optionValues = values "" (result.options or { }) userConfig;
  config = lib.recursiveUpdate otherConfig optionValues;

  merge = a: b: a // builtins.mapAttrs
    (n: v:
      if !(a ? ${n}) then v
      else if builtins.isAttrs v && builtins.isAttrs a.${n} then merge a.${n} v
      else if builtins.isList v && builtins.isList a.${n} then a.${n} ++ v
      else throw "conflicting definitions of `${n}'") b;

  resolve = v:
    let t = typeOf v; in
    if t == "if" then (if v.condition then resolve v.content else absent)
    else if t == "override" then resolve v.content
    else if t == "merge" then
      builtins.foldl' merge { } (builtins.filter (x: !(isAbsent x)) (map resolve v.contents))
    else if builtins.isAttrs v then
      lib.filterAttrs (_: x: !(isAbsent x)) (builtins.mapAttrs (_: resolve) v)
    else if builtins.isList v then builtins.filter (x: !(isAbsent x)) (map resolve v)
    else v;

  resolved = let r = resolve (result.config or { }); in if isAbsent r then { } else r;
  # Option values for the result: an option left undefined (or otherwise failing) shows as null
  # here, as NixOS only complains about options that are used. Errors still surface wherever
  # the module's config uses the value.
  sanitize = v:
    let r = builtins.tryEval v; in
    if !r.success then null
    else if builtins.isAttrs r.value then builtins.mapAttrs (_: sanitize) r.value
    else if builtins.isList r.value then
      (let d = builtins.tryEval (builtins.deepSeq r.value r.value); in if d.success then d.value else null)
    else r.value;
in
{
  options = sanitize optionValues;
  config = resolved;
  imports = map toString (result.imports or [ ]);
  failedAssertions = map (a: a.message)
    (builtins.filter (a: !a.assertion) (resolved.assertions or [ ]));
}
