# RB-WIN-LOGGING-001 rollback: the Security log's maximum size back to the newest snapshot's.
# The EventLog service is not stopped: stopping the event log would itself be the incident.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$bytes = [int64]$snap.security_log.max_bytes
wevtutil.exe sl Security "/ms:$bytes" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "wevtutil failed with $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action "Security log maximum size restored to $bytes bytes"
