# RB-WIN-LOGGING-001 remediate: start the event log and size the Security log.
if ("$((Get-Service -Name 'EventLog').Status)" -ne 'Running') { Start-Service -ErrorAction Stop -Name 'EventLog' }
$before = [ordered]@{}
$before.security_log = [ordered]@{ max_bytes = [int64](Get-WinEvent -ListLog 'Security' -ErrorAction Stop).MaximumSizeInBytes }
[void](Save-OsirisSnapshot -Data $before)
$bytes = [int64]$OsirisParams.min_security_log_mb * 1048576
wevtutil.exe sl Security "/ms:$bytes" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "wevtutil failed with $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action "Security log set to $($OsirisParams.min_security_log_mb) MB"
