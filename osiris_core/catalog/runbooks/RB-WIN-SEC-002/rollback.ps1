# RB-WIN-SEC-002 rollback: the audit policy back to auditpol's own backup named by the newest
# snapshot (auditpol /restore).
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$file = "$($snap.audit_backup)"
if (-not (Test-Path -LiteralPath $file)) { throw "the audit policy backup $file is gone" }
auditpol.exe /restore "/file:$file" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "auditpol /restore exited $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action 'audit policy restored from the backup'
