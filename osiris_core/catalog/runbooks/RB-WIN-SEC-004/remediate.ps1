# RB-WIN-SEC-004 remediate: set minimum password length and maximum age.
$l = [int]$OsirisParams.min_password_length
$a = [int]$OsirisParams.max_password_age_days
net.exe accounts "/minpwlen:$l" "/maxpwage:$a" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "net accounts exited $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action "minimum length $l, maximum age $a days"
