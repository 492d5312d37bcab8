# RB-WIN-FIREWALL-001 remediate: enable every firewall profile.
$before = [ordered]@{}
$before.firewall_enabled = @(Get-NetFirewallProfile -ErrorAction Stop | ForEach-Object { [ordered]@{ name = "$($_.Name)"; enabled = "$($_.Enabled)" } })
[void](Save-OsirisSnapshot -Data $before)
Set-NetFirewallProfile -ErrorAction Stop -Profile 'Domain', 'Private', 'Public' -Enabled True
Write-OsirisDone -Changed $true -Action 'all firewall profiles enabled'
