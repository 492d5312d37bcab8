# RB-WIN-SEC-004 detect: the effective minimum password length and maximum age, and whether a domain GPO sets them.
# Read from secedit's export (stable key names, any display language), never `net accounts` text.
$keys = @('MinimumPasswordLength', 'MaximumPasswordAge')
$local = Get-OsirisSecurityPolicy
$eff = Get-OsirisSecurityPolicy -Merged
$gpo = Get-OsirisGpoManagedKeys -Keys $keys -Local $local -Effective $eff
$l = if ($eff.ContainsKey('MinimumPasswordLength')) { [int64]$eff['MinimumPasswordLength'] } else { 0 }
# -1: passwords never expire
$a = if ($eff.ContainsKey('MaximumPasswordAge')) { [int64]$eff['MaximumPasswordAge'] } else { -1 }
$lok = $l -ge $OsirisParams.min_password_length
$aok = $a -gt 0 -and $a -le $OsirisParams.max_password_age_days
$status = if ($lok -and $aok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ min_password_length = $l; max_password_age_days = $a; gpo_managed = ($gpo.Count -gt 0) } -Expected @{ min_password_length = $OsirisParams.min_password_length; max_password_age_days = $OsirisParams.max_password_age_days }
