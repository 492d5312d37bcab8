# RB-WIN-SVC-001 remediate: set DNS to automatic start and start it.
$svc = Get-Service -Name 'DNS' -ErrorAction SilentlyContinue
if ($null -eq $svc) { Write-OsirisDone -Changed $false -Action 'role not installed'; exit 0 }
Set-Service -ErrorAction Stop -Name 'DNS' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'DNS'
Write-OsirisDone -Changed $true -Action 'started DNS'
