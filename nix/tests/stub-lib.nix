# A stub of the parts of nixpkgs `lib` the Osiris modules use — enough to evaluate a module
# function with plain `nix-instantiate --eval` where no nixpkgs tree exists (CI, this repo's
# tests). It is NOT the module system: no priorities beyond unwrapping, no type merging.
# Types carry a `check` so eval-module.nix can at least refuse values of the wrong type.
let
  mkType = name: check: { _type = "type"; inherit name check; };
  isInt = builtins.isInt;
  isStr = builtins.isString;
  matches = re: v: isStr v && builtins.match re v != null;
  all = f: xs: builtins.all f xs;
in
rec {
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: mkOption {
    type = types.bool;
    default = false;
    description = "Whether to enable ${name}.";
  };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  literalExpression = text: { _type = "literalExpression"; inherit text; };

  types = rec {
    str = mkType "str" isStr;
    lines = mkType "lines" isStr;
    bool = mkType "bool" builtins.isBool;
    int = mkType "int" isInt;
    port = mkType "port" (v: isInt v && v >= 0 && v <= 65535);
    path = mkType "path" (v: builtins.isPath v || matches "/.*" v);
    package = mkType "package" (v: isStr v || builtins.isAttrs v);
    strMatching = re: mkType "strMatching ${re}" (matches re);
    enum = choices: mkType "enum" (v: builtins.elem v choices);
    nullOr = t: mkType "nullOr ${t.name}" (v: v == null || t.check v);
    listOf = t: mkType "listOf ${t.name}" (v: builtins.isList v && all t.check v);
    nonEmptyListOf = t: mkType "nonEmptyListOf ${t.name}"
      (v: builtins.isList v && v != [ ] && all t.check v);
    attrsOf = t: mkType "attrsOf ${t.name}"
      (v: builtins.isAttrs v && all t.check (builtins.attrValues v));
    ints = {
      between = lo: hi: mkType "ints.between ${toString lo} ${toString hi}"
        (v: isInt v && v >= lo && v <= hi);
      positive = mkType "ints.positive" (v: isInt v && v > 0);
      unsigned = mkType "ints.unsigned" (v: isInt v && v >= 0);
    };
  };

  # list / attrset / string helpers with nixpkgs' semantics
  optional = c: x: if c then [ x ] else [ ];
  optionals = c: xs: if c then xs else [ ];
  optionalString = c: s: if c then s else "";
  optionalAttrs = c: a: if c then a else { };
  concatStrings = builtins.concatStringsSep "";
  concatStringsSep = builtins.concatStringsSep;
  concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);
  concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
  concatMap = f: xs: builtins.concatLists (map f xs);
  mapAttrs = builtins.mapAttrs;
  mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
  filterAttrs = pred: a: builtins.listToAttrs (map (n: { name = n; value = a.${n}; })
    (builtins.filter (n: pred n a.${n}) (builtins.attrNames a)));
  hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
  removePrefix = p: s:
    if hasPrefix p s
    then builtins.substring (builtins.stringLength p) (builtins.stringLength s) s
    else s;
  hasSuffix = x: s:
    let ls = builtins.stringLength s; lx = builtins.stringLength x;
    in lx <= ls && builtins.substring (ls - lx) lx s == x;
  hasInfix = x: s: builtins.match ".*${escapeRegex x}.*" s != null;
  escapeRegex = builtins.replaceStrings
    [ "\\" "." "*" "+" "?" "(" ")" "[" "]" "{" "}" "|" "^" "$" ]
    [ "\\\\" "\\." "\\*" "\\+" "\\?" "\\(" "\\)" "\\[" "\\]" "\\{" "\\}" "\\|" "\\^" "\\$" ];
  unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  toInt = s: builtins.fromJSON s;
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  escapeShellArgs = xs: builtins.concatStringsSep " " (map escapeShellArg xs);
  recursiveUpdate = a: b: a // builtins.mapAttrs
    (n: v: if builtins.isAttrs v && builtins.isAttrs (a.${n} or null) then recursiveUpdate a.${n} v else v) b;
}
