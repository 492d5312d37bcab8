# RB-WIN-SEC-001 remediate: block inbound traffic by default on every profile.
$before = [ordered]@{}
$before.firewall_inbound = @(Get-NetFirewallProfile -ErrorAction Stop | ForEach-Object { [ordered]@{ name = "$($_.Name)"; inbound = "$($_.DefaultInboundAction)" } })
[void](Save-OsirisSnapshot -Data $before)
Set-NetFirewallProfile -ErrorAction Stop -Profile 'Domain', 'Private', 'Public' -DefaultInboundAction Block
Write-OsirisDone -Changed $true -Action 'default inbound action set to Block'
