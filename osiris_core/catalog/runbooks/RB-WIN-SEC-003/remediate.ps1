# RB-WIN-SEC-003 remediate: set the lockout threshold, duration and observation window in the
# local security policy through `secedit /configure` — unless a domain GPO sets them: then a
# local change is undone at the next policy refresh (drift, heal, drift…), so it refuses and
# the failure escalates to a person who can set it in the GPO.
$keys = @('LockoutBadCount', 'LockoutDuration', 'ResetLockoutCount')
$local = Get-OsirisSecurityPolicy
$before = [ordered]@{}
$before.lockout_policy = $local
[void](Save-OsirisSnapshot -Data $before)
$gpo = Get-OsirisGpoManagedKeys -Keys $keys -Local $local -Effective (Get-OsirisSecurityPolicy -Merged)
if ($gpo.Count -gt 0) { throw "refused: a domain GPO sets $($gpo -join ', '); set the lockout policy in the GPO (a local change would be undone at the next refresh)" }
$t = [int]$OsirisParams.lockout_threshold
$d = [int]$OsirisParams.lockout_duration_min
Import-OsirisSecurityPolicy -Values ([ordered]@{ LockoutBadCount = $t; ResetLockoutCount = $d; LockoutDuration = $d })
Write-OsirisDone -Changed $true -Action "lockout after $t attempts for $d minutes"
