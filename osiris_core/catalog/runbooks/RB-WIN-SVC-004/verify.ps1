# RB-WIN-SVC-004 verify: is Windows Time running, automatic, and configured with a real source?
# The source comes from W32Time's own configuration in the registry (Type, NtpServer), not from
# `w32tm /query` text (localised). How far the clock is off is RB-WIN-TIME's measurement.
$svc = Get-Service -Name 'W32Time'
$state = "$($svc.Status)"; $start = "$($svc.StartType)"
$par = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters' -ErrorAction SilentlyContinue
$type = if ($null -ne $par) { "$($par.Type)" } else { 'NoSync' }
$ntp = if ($null -ne $par) { "$($par.NtpServer)" } else { '' }
$src = switch ($type) {
    'NT5DS' { 'domain hierarchy' }
    { $_ -eq 'NTP' -or $_ -eq 'AllSync' } { (($ntp -split '[ ,]')[0]).Trim() }
    default { '' }
}
$status = if ($state -eq 'Running' -and $start -eq 'Automatic' -and $src -ne '') { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ status = $state; start_type = $start; source = $src } -Expected @{ status = 'Running'; start_type = 'Automatic'; source = 'a network time source' }
