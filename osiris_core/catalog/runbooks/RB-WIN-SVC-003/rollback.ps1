# RB-WIN-SVC-003 rollback: the Print Spooler's start type and state back to the snapshot's.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$s = $snap.spooler_service
Set-Service -ErrorAction Stop -Name 'Spooler' -StartupType "$($s.start_type)"
if ("$($s.status)" -eq 'Running') { Start-Service -ErrorAction Stop -Name 'Spooler' } else { Stop-Service -ErrorAction Stop -Name 'Spooler' -Force }
Write-OsirisDone -Changed $true -Action "Spooler restored ($($s.status), $($s.start_type))"
