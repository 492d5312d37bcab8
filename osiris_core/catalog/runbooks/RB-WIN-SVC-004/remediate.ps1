# RB-WIN-SVC-004 remediate: W32Time automatic and running, syncing from the configured source.
# A Type of NoSync with an NtpServer list still set goes back to NTP; with no source configured
# it refuses (which server a clinic uses is a person's call), and the failure escalates.
$key = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters'
$par = Get-ItemProperty -Path $key -ErrorAction Stop
$before = [ordered]@{}
$svc = Get-Service -Name 'W32Time'
$before.w32time = [ordered]@{ status = "$($svc.Status)"; start_type = "$($svc.StartType)"; type = "$($par.Type)" }
[void](Save-OsirisSnapshot -Data $before)
$action = 'W32Time started and resynced'
if ("$($par.Type)" -eq 'NoSync') {
    if ("$($par.NtpServer)".Trim() -eq '') { throw 'refused: W32Time has no time source configured (Type NoSync, no NtpServer); a person must choose one' }
    Set-ItemProperty -Path $key -Name 'Type' -Value 'NTP' -ErrorAction Stop
    $action = "W32Time set back to NTP ($("$($par.NtpServer)".Trim())), started and resynced"
}
Set-Service -ErrorAction Stop -Name 'W32Time' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'W32Time'
w32tm.exe /config /update | Out-Null
w32tm.exe /resync /force | Out-Null
Write-OsirisDone -Changed $true -Action $action
