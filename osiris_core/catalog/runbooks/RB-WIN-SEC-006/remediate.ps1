# RB-WIN-SEC-006 remediate: turn real-time protection back on.
$pref = Get-MpPreference -ErrorAction Stop
$before = [ordered]@{}
$before.defender_prefs = [ordered]@{ realtime_off = [bool]$pref.DisableRealtimeMonitoring; behavior_off = [bool]$pref.DisableBehaviorMonitoring; ioav_off = [bool]$pref.DisableIOAVProtection }
[void](Save-OsirisSnapshot -Data $before)
Set-MpPreference -ErrorAction Stop -DisableRealtimeMonitoring $false -DisableBehaviorMonitoring $false -DisableIOAVProtection $false
Write-OsirisDone -Changed $true -Action 'real-time protection enabled'
