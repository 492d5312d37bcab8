# RB-WIN-FIREWALL-001 remediate: enable every firewall profile.
Set-NetFirewallProfile -ErrorAction Stop -Profile 'Domain', 'Private', 'Public' -Enabled True
Write-OsirisDone -Changed $true -Action 'all firewall profiles enabled'
