# RB-WIN-SEC-006 rollback: Defender's three switches back to the newest snapshot's. It runs only
# when verify failed after remediate (something else holds them), and says what it put back.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$p = $snap.defender_prefs
Set-MpPreference -ErrorAction Stop -DisableRealtimeMonitoring ([bool]$p.realtime_off) -DisableBehaviorMonitoring ([bool]$p.behavior_off) -DisableIOAVProtection ([bool]$p.ioav_off)
Write-OsirisDone -Changed $true -Action "Defender preferences restored (realtime off: $($p.realtime_off))"
