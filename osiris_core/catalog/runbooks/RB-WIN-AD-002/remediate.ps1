# RB-WIN-AD-002 remediate: repair the secure channel.
$ok = Test-ComputerSecureChannel -Repair
if (-not $ok) { throw 'secure channel repair failed' }
Write-OsirisDone -Changed $true -Action 'secure channel repaired'
