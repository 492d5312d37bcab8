# RB-WIN-NET-003 remediate: reclassify Public connections as Private.
$n = 0
foreach ($p in Get-NetConnectionProfile | Where-Object { "$($_.NetworkCategory)" -eq 'Public' }) {
    Set-NetConnectionProfile -ErrorAction Stop -InterfaceIndex $p.InterfaceIndex -NetworkCategory Private
    $n++
}
Write-OsirisDone -Changed ($n -gt 0) -Action "$n connection(s) set to Private"
