# RB-WIN-AD-001 remediate: force AD replication.
$out = repadmin.exe /syncall /AdeP
if ($LASTEXITCODE -ne 0) { throw "repadmin exited $LASTEXITCODE" }
Write-OsirisDone -Changed $true -Action "replication forced ($(@($out).Count) lines of output)"
