# RB-WIN-SVC-002 remediate: set DHCPServer to automatic start and start it.
$svc = Get-Service -Name 'DHCPServer' -ErrorAction SilentlyContinue
if ($null -eq $svc) { Write-OsirisDone -Changed $false -Action 'role not installed'; exit 0 }
$before = [ordered]@{}
$before.dhcp_service = [ordered]@{ status = "$($svc.Status)"; start_type = "$($svc.StartType)" }
[void](Save-OsirisSnapshot -Data $before)
Set-Service -ErrorAction Stop -Name 'DHCPServer' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'DHCPServer'
Write-OsirisDone -Changed $true -Action 'started DHCPServer'
