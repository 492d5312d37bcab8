# RB-WIN-SVC-004 verify: is Windows Time running and synced from a real source?
$svc = Get-Service -Name 'W32Time'
$state = "$($svc.Status)"; $start = "$($svc.StartType)"
$src = ''
if ($state -eq 'Running') { $src = "$(w32tm.exe /query /source)".Trim() }
$local = ($src -eq '') -or ($src -match 'Local CMOS Clock|Free-running System Clock')
$status = if ($state -eq 'Running' -and $start -eq 'Automatic' -and -not $local) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ status = $state; start_type = $start; source = $src } -Expected @{ status = 'Running'; start_type = 'Automatic'; source = 'a network time source' }
