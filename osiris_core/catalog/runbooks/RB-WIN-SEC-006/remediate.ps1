# RB-WIN-SEC-006 remediate: turn real-time protection back on.
Set-MpPreference -ErrorAction Stop -DisableRealtimeMonitoring $false -DisableBehaviorMonitoring $false -DisableIOAVProtection $false
Write-OsirisDone -Changed $true -Action 'real-time protection enabled'
