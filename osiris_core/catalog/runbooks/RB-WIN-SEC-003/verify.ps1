# RB-WIN-SEC-003 verify: the effective lockout threshold and duration, and whether a domain GPO sets them.
# Read from secedit's export (stable key names, any display language), never `net accounts` text.
$keys = @('LockoutBadCount', 'LockoutDuration', 'ResetLockoutCount')
$local = Get-OsirisSecurityPolicy
$eff = Get-OsirisSecurityPolicy -Merged
$gpo = Get-OsirisGpoManagedKeys -Keys $keys -Local $local -Effective $eff
$t = if ($eff.ContainsKey('LockoutBadCount')) { [int64]$eff['LockoutBadCount'] } else { 0 }
$d = if ($eff.ContainsKey('LockoutDuration')) { [int64]$eff['LockoutDuration'] } else { 0 }
$tok = $t -gt 0 -and $t -le $OsirisParams.lockout_threshold
# -1: locked until an administrator unlocks the account, stricter than any duration
$dok = $d -eq -1 -or $d -ge $OsirisParams.lockout_duration_min
$status = if ($tok -and $dok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ lockout_threshold = $t; lockout_duration_min = $d; gpo_managed = ($gpo.Count -gt 0) } -Expected @{ lockout_threshold = $OsirisParams.lockout_threshold; lockout_duration_min = $OsirisParams.lockout_duration_min }
