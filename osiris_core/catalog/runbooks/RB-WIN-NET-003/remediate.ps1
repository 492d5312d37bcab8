# RB-WIN-NET-003 remediate: reclassify Public connections as Private.
$before = [ordered]@{}
$before.categories = @(Get-NetConnectionProfile -ErrorAction Stop | ForEach-Object { [ordered]@{ index = [int]$_.InterfaceIndex; category = "$($_.NetworkCategory)" } })
[void](Save-OsirisSnapshot -Data $before)
$n = 0
foreach ($p in Get-NetConnectionProfile | Where-Object { "$($_.NetworkCategory)" -eq 'Public' }) {
    Set-NetConnectionProfile -ErrorAction Stop -InterfaceIndex $p.InterfaceIndex -NetworkCategory Private
    $n++
}
Write-OsirisDone -Changed ($n -gt 0) -Action "$n connection(s) set to Private"
