# RB-WIN-SVC-001 rollback: DNS's start type and state back to the newest snapshot's.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$s = $snap.dns_service
Set-Service -ErrorAction Stop -Name 'DNS' -StartupType "$($s.start_type)"
if ("$($s.status)" -eq 'Stopped') { Stop-Service -ErrorAction Stop -Name 'DNS' -Force }
Write-OsirisDone -Changed $true -Action "DNS restored ($($s.status), $($s.start_type))"
