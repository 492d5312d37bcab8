# RB-WIN-NET-003 rollback: each connection's network category back to the newest snapshot's
# (DomainAuthenticated is Windows' own verdict and cannot be set; remediate never changes it).
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$n = 0
foreach ($c in @($snap.categories | Where-Object { $_.category -ne 'DomainAuthenticated' })) {
    Set-NetConnectionProfile -ErrorAction Stop -InterfaceIndex $c.index -NetworkCategory $c.category
    $n++
}
Write-OsirisDone -Changed $true -Action "network category restored on $n connection(s)"
