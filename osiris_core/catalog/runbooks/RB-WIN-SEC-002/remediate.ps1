# RB-WIN-SEC-002 remediate: enable success and failure auditing on each required subcategory.
$guids = @(
    '{0CCE9215-69AE-11D9-BED3-505054503030}',
    '{0CCE9216-69AE-11D9-BED3-505054503030}',
    '{0CCE9217-69AE-11D9-BED3-505054503030}',
    '{0CCE923F-69AE-11D9-BED3-505054503030}',
    '{0CCE9235-69AE-11D9-BED3-505054503030}',
    '{0CCE9237-69AE-11D9-BED3-505054503030}',
    '{0CCE922F-69AE-11D9-BED3-505054503030}',
    '{0CCE9228-69AE-11D9-BED3-505054503030}',
    '{0CCE922B-69AE-11D9-BED3-505054503030}'
)
# The whole audit policy, as auditpol itself backs it up (CSV), beside the snapshot.
$file = Join-Path (Get-OsirisPrivateDir -Name 'snapshots') "$OsirisRunbook-$((Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssfffZ')).auditpol.csv"
auditpol.exe /backup "/file:$file" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "auditpol /backup exited $LASTEXITCODE" }
$before = [ordered]@{}
$before.audit_backup = $file
[void](Save-OsirisSnapshot -Data $before)
foreach ($g in $guids) {
    auditpol.exe /set "/subcategory:$g" /success:enable /failure:enable | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "auditpol failed for $g" }
}
Write-OsirisDone -Changed $true -Action "audit policy set for $($guids.Count) subcategories"
