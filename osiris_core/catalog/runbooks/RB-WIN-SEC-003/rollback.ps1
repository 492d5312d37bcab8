# RB-WIN-SEC-003 rollback: write back the lockout values the newest snapshot holds.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$saved = $snap.lockout_policy
$values = [ordered]@{}
foreach ($k in @('LockoutBadCount', 'LockoutDuration', 'ResetLockoutCount')) {
    if ($null -ne $saved.PSObject.Properties[$k]) { $values[$k] = [int64]$saved.PSObject.Properties[$k].Value }
}
if ($values.Count -eq 0) { throw 'the snapshot holds no lockout value' }
Import-OsirisSecurityPolicy -Values $values
Write-OsirisDone -Changed $true -Action "lockout policy restored from the snapshot ($($values.Keys -join ', '))"
