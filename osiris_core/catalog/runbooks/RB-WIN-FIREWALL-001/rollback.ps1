# RB-WIN-FIREWALL-001 rollback: each profile's Enabled back to what the newest snapshot holds.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$n = 0
foreach ($p in @($snap.firewall_enabled)) { Set-NetFirewallProfile -ErrorAction Stop -Name $p.name -Enabled $p.enabled; $n++ }
Write-OsirisDone -Changed $true -Action "firewall Enabled restored on $n profile(s)"
