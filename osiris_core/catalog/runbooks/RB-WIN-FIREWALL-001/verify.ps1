# RB-WIN-FIREWALL-001 verify: are all firewall profiles enabled?
$obs = @{}
foreach ($p in Get-NetFirewallProfile) { $obs[$p.Name.ToLower()] = [bool]$p.Enabled }
$status = if (@($obs.Values | Where-Object { -not $_ }).Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed $obs -Expected @{ domain = $true; private = $true; public = $true }
