# RB-WIN-UPD-001 remediate: reset the Windows Update client.
$names = @('wuauserv', 'BITS', 'CryptSvc')
foreach ($n in $names) { Stop-Service -Name $n -Force -ErrorAction SilentlyContinue }
foreach ($n in $names) { if ("$((Get-Service -Name $n).StartType)" -eq 'Disabled') { Set-Service -ErrorAction Stop -Name $n -StartupType Manual } }
$stamp = Get-Date -Format 'yyyyMMddHHmmss'
Rename-Item -Path "$env:SystemRoot\SoftwareDistribution" -NewName "SoftwareDistribution.osiris-old-$stamp" -ErrorAction SilentlyContinue
Rename-Item -Path "$env:SystemRoot\System32\catroot2" -NewName "catroot2.osiris-old-$stamp" -ErrorAction SilentlyContinue
# The WinHTTP proxy is left alone: a clinic may need it to reach WSUS or Microsoft Update.
foreach ($n in $names) { Start-Service -ErrorAction Stop -Name $n }
Write-OsirisDone -Changed $true -Action 'Windows Update client reset'
