# RB-WIN-SEC-003 remediate: set the lockout threshold, duration and observation window.
$t = [int]$OsirisParams.lockout_threshold
$d = [int]$OsirisParams.lockout_duration_min
net.exe accounts "/lockoutthreshold:$t" "/lockoutduration:$d" "/lockoutwindow:$d" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "net accounts exited $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action "lockout after $t attempts for $d minutes"
