# RB-WIN-SVC-004 rollback: W32Time's Type, start type and state back to what the newest
# snapshot holds.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$saved = $snap.w32time
Set-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters' -Name 'Type' -Value "$($saved.type)" -ErrorAction Stop
Set-Service -ErrorAction Stop -Name 'W32Time' -StartupType "$($saved.start_type)"
if ("$($saved.status)" -eq 'Stopped') { Stop-Service -ErrorAction Stop -Name 'W32Time' -Force } else { w32tm.exe /config /update | Out-Null }
Write-OsirisDone -Changed $true -Action "W32Time restored ($($saved.status), start type $($saved.start_type), Type $($saved.type))"
