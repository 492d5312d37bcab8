# RB-WIN-SEC-001 verify: does every profile block inbound traffic by default?
$obs = @{}
foreach ($p in Get-NetFirewallProfile) { $obs[$p.Name.ToLower()] = "$($p.DefaultInboundAction)" }
$bad = @($obs.Values | Where-Object { $_ -ne 'Block' -and $_ -ne 'NotConfigured' })
$status = if ($bad.Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed $obs -Expected @{ domain = 'Block'; private = 'Block'; public = 'Block' }
