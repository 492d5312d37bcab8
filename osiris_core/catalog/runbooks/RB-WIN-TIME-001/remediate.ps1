# RB-WIN-TIME-001 remediate: ask Windows Time to resynchronise from its configured source now.
# It never sets the clock itself and never changes the source: W32Time steps or slews within its
# own MaxPos/NegPhaseCorrection limits, so a clock further off than those stays off and verify
# escalates it. The exit code is read, never w32tm's (localised) text.
$svc = Get-Service -Name 'W32Time' -ErrorAction Stop
if ("$($svc.Status)" -ne 'Running') { throw 'W32Time is not running (RB-WIN-SVC-004 starts it)' }
w32tm.exe /resync /force | Out-Null
if ($LASTEXITCODE -ne 0) { throw "w32tm /resync failed (exit $LASTEXITCODE)" }
Write-OsirisDone -Changed $true -Action 'W32Time resynchronised from its configured source'
