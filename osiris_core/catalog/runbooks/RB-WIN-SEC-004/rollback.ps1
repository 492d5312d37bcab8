# RB-WIN-SEC-004 rollback: write back the password length and age the newest snapshot holds.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$saved = $snap.password_policy
$values = [ordered]@{}
foreach ($k in @('MinimumPasswordLength', 'MaximumPasswordAge')) {
    if ($null -ne $saved.PSObject.Properties[$k]) { $values[$k] = [int64]$saved.PSObject.Properties[$k].Value }
}
if ($values.Count -eq 0) { throw 'the snapshot holds no password value' }
Import-OsirisSecurityPolicy -Values $values
Write-OsirisDone -Changed $true -Action "password policy restored from the snapshot ($($values.Keys -join ', '))"
