# RB-WIN-SVC-003 remediate: apply the Spooler policy for this machine's role.
$dc = (Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole -ge 4
if ($dc -or $OsirisParams.disable_everywhere) {
    Stop-Service -Name 'Spooler' -Force
    Set-Service -Name 'Spooler' -StartupType Disabled
    Write-OsirisDone -Changed $true -Action 'Spooler stopped and disabled'
} else {
    Set-Service -Name 'Spooler' -StartupType Automatic
    Start-Service -Name 'Spooler'
    Write-OsirisDone -Changed $true -Action 'Spooler started'
}
