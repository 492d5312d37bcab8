# RB-WIN-SVC-002 rollback: DHCPServer's start type and state back to the newest snapshot's.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$s = $snap.dhcp_service
Set-Service -ErrorAction Stop -Name 'DHCPServer' -StartupType "$($s.start_type)"
if ("$($s.status)" -eq 'Stopped') { Stop-Service -ErrorAction Stop -Name 'DHCPServer' -Force }
Write-OsirisDone -Changed $true -Action "DHCPServer restored ($($s.status), $($s.start_type))"
