# RB-WIN-SVC-001 remediate: set DNS to automatic start and start it.
$svc = Get-Service -Name 'DNS' -ErrorAction SilentlyContinue
if ($null -eq $svc) { Write-OsirisDone -Changed $false -Action 'role not installed'; exit 0 }
$before = [ordered]@{}
$before.dns_service = [ordered]@{ status = "$($svc.Status)"; start_type = "$($svc.StartType)" }
[void](Save-OsirisSnapshot -Data $before)
Set-Service -ErrorAction Stop -Name 'DNS' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'DNS'
Write-OsirisDone -Changed $true -Action 'started DNS'
