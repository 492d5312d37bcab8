# RB-WIN-LOGGING-001 verify: is event logging running with a large enough Security log?
$svc = Get-Service -Name 'EventLog'
$running = "$($svc.Status)" -eq 'Running'
$log = Get-WinEvent -ListLog 'Security'
$mb = [int]($log.MaximumSizeInBytes / 1048576)
$status = if ($running -and $mb -ge $OsirisParams.min_security_log_mb) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ eventlog_running = $running; security_log_mb = $mb } -Expected @{ eventlog_running = $true; security_log_mb = $OsirisParams.min_security_log_mb }
