# RB-WIN-UPD-002 rollback: the WSUS policy values and the client id back to the newest
# snapshot's (an empty value saved means the value was absent: it is removed).
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$w = $snap.wsus_policy
$pol = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate'
$wu = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate'
Stop-Service -ErrorAction Stop -Name 'wuauserv' -Force
foreach ($pair in @(@($pol, 'WUServer', "$($w.wu_server)"), @($pol, 'WUStatusServer', "$($w.wu_status_server)"), @($wu, 'SusClientId', "$($w.sus_client_id)"))) {
    if ($pair[2] -eq '') {
        Remove-ItemProperty -Path $pair[0] -Name $pair[1] -ErrorAction SilentlyContinue
    } else {
        if (-not (Test-Path -Path $pair[0])) { New-Item -ErrorAction Stop -Path $pair[0] -Force | Out-Null }
        Set-ItemProperty -ErrorAction Stop -Path $pair[0] -Name $pair[1] -Value $pair[2]
    }
}
Start-Service -ErrorAction Stop -Name 'wuauserv'
Write-OsirisDone -Changed $true -Action "WSUS settings restored (WUServer '$($w.wu_server)')"
