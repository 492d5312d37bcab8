# RB-WIN-SVC-004 remediate: start Windows Time and resync.
Set-Service -ErrorAction Stop -Name 'W32Time' -StartupType Automatic
Start-Service -ErrorAction Stop -Name 'W32Time'
w32tm.exe /resync /force | Out-Null
Write-OsirisDone -Changed $true -Action 'W32Time started and resynced'
