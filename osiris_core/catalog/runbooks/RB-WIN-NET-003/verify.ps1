# RB-WIN-NET-003 verify: is any connection classified Public?
$pub = @(Get-NetConnectionProfile | Where-Object { "$($_.NetworkCategory)" -eq 'Public' } | ForEach-Object { "$($_.InterfaceAlias)" })
$status = if ($pub.Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ public_interfaces = $pub } -Expected @{ public_interfaces = @() }
