# RB-WIN-SEC-001 rollback: each profile's default inbound action back to the newest snapshot's.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$n = 0
foreach ($p in @($snap.firewall_inbound)) { Set-NetFirewallProfile -ErrorAction Stop -Name $p.name -DefaultInboundAction $p.inbound; $n++ }
Write-OsirisDone -Changed $true -Action "default inbound action restored on $n profile(s)"
