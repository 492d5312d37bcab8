# RB-WIN-UPD-002 remediate: re-register the client with the site's WSUS server.
if ($OsirisParams.wsus_server -eq '') { Write-OsirisDone -Changed $false -Action 'site does not use WSUS'; exit 0 }
$pol = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate'
$wu = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate'
$p = Get-ItemProperty -Path $pol -ErrorAction SilentlyContinue
$c = Get-ItemProperty -Path $wu -ErrorAction SilentlyContinue
$before = [ordered]@{}
$before.wsus_policy = [ordered]@{ wu_server = if ($null -ne $p) { "$($p.WUServer)" } else { '' }; wu_status_server = if ($null -ne $p) { "$($p.WUStatusServer)" } else { '' }; sus_client_id = if ($null -ne $c) { "$($c.SusClientId)" } else { '' } }
[void](Save-OsirisSnapshot -Data $before)
if (-not (Test-Path -Path $pol)) { New-Item -ErrorAction Stop -Path $pol -Force | Out-Null }
Set-ItemProperty -ErrorAction Stop -Path $pol -Name 'WUServer' -Value $OsirisParams.wsus_server
Set-ItemProperty -ErrorAction Stop -Path $pol -Name 'WUStatusServer' -Value $OsirisParams.wsus_server
Stop-Service -ErrorAction Stop -Name 'wuauserv' -Force
Remove-ItemProperty -Path $wu -Name 'SusClientId' -ErrorAction SilentlyContinue
Remove-ItemProperty -Path $wu -Name 'SusClientIdValidation' -ErrorAction SilentlyContinue
Start-Service -ErrorAction Stop -Name 'wuauserv'
usoclient.exe StartScan | Out-Null
Write-OsirisDone -Changed $true -Action "registered with $($OsirisParams.wsus_server)"
