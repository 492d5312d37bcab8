# RB-WIN-SVC-002 remediate: set DHCPServer to automatic start and start it.
$svc = Get-Service -Name 'DHCPServer' -ErrorAction SilentlyContinue
if ($null -eq $svc) { Write-OsirisDone -Changed $false -Action 'role not installed'; exit 0 }
Set-Service -ErrorAction Stop -Name 'DHCPServer' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'DHCPServer'
Write-OsirisDone -Changed $true -Action 'started DHCPServer'
