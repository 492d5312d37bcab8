# RB-WIN-SEC-004 remediate: set the minimum password length and maximum age in the local
# security policy through `secedit /configure` — unless a domain GPO sets them: then a local
# change is undone at the next policy refresh (drift, heal, drift…), so it refuses and the
# failure escalates to a person who can set it in the GPO.
$keys = @('MinimumPasswordLength', 'MaximumPasswordAge')
$local = Get-OsirisSecurityPolicy
$before = [ordered]@{}
$before.password_policy = $local
[void](Save-OsirisSnapshot -Data $before)
$gpo = Get-OsirisGpoManagedKeys -Keys $keys -Local $local -Effective (Get-OsirisSecurityPolicy -Merged)
if ($gpo.Count -gt 0) { throw "refused: a domain GPO sets $($gpo -join ', '); set the password policy in the GPO (a local change would be undone at the next refresh)" }
$l = [int]$OsirisParams.min_password_length
$a = [int]$OsirisParams.max_password_age_days
Import-OsirisSecurityPolicy -Values ([ordered]@{ MinimumPasswordLength = $l; MaximumPasswordAge = $a })
Write-OsirisDone -Changed $true -Action "minimum length $l, maximum age $a days"
