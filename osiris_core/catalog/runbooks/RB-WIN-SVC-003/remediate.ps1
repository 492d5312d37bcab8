# RB-WIN-SVC-003 remediate: apply the Spooler policy for this machine's role.
$dc = (Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole -ge 4
$svc = Get-Service -Name 'Spooler'
$before = [ordered]@{}
$before.spooler_service = [ordered]@{ status = "$($svc.Status)"; start_type = "$($svc.StartType)" }
[void](Save-OsirisSnapshot -Data $before)
if ($dc -or $OsirisParams.disable_everywhere) {
    Stop-Service -ErrorAction Stop -Name 'Spooler' -Force
    Set-Service -ErrorAction Stop -Name 'Spooler' -StartupType Disabled
    Write-OsirisDone -Changed $true -Action 'Spooler stopped and disabled'
} else {
    Set-Service -ErrorAction Stop -Name 'Spooler' -StartupType Automatic
    Start-Service -ErrorAction Stop -Name 'Spooler'
    Write-OsirisDone -Changed $true -Action 'Spooler started'
}
