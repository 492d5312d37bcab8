# RB-WIN-SEC-006 verify: is real-time protection on?
$mp = Get-MpComputerStatus
$obs = @{ realtime_enabled = [bool]$mp.RealTimeProtectionEnabled; behavior_monitor_enabled = [bool]$mp.BehaviorMonitorEnabled; ioav_enabled = [bool]$mp.IoavProtectionEnabled }
$status = if ($obs.realtime_enabled -and $obs.behavior_monitor_enabled -and $obs.ioav_enabled) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed $obs -Expected @{ realtime_enabled = $true; behavior_monitor_enabled = $true; ioav_enabled = $true }
