# RB-WIN-SEC-001 remediate: block inbound traffic by default on every profile.
Set-NetFirewallProfile -ErrorAction Stop -Profile 'Domain', 'Private', 'Public' -DefaultInboundAction Block
Write-OsirisDone -Changed $true -Action 'default inbound action set to Block'
