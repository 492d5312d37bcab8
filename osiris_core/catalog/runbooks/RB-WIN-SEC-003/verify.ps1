# RB-WIN-SEC-003 verify: read the lockout threshold and duration.
$na = net.exe accounts
function Get-NetAccountsValue([string]$Label) {
    $line = $na | Where-Object { $_ -like "$Label*" } | Select-Object -First 1
    if ($null -eq $line) { return '' }
    return ($line -split ':', 2)[1].Trim()
}
$t = Get-NetAccountsValue 'Lockout threshold'
$d = Get-NetAccountsValue 'Lockout duration'
$ti = 0; $di = 0
$tok = [int]::TryParse($t, [ref]$ti) -and $ti -gt 0 -and $ti -le $OsirisParams.lockout_threshold
$dok = [int]::TryParse($d, [ref]$di) -and $di -ge $OsirisParams.lockout_duration_min
$status = if ($tok -and $dok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ lockout_threshold = $t; lockout_duration_min = $d } -Expected @{ lockout_threshold = $OsirisParams.lockout_threshold; lockout_duration_min = $OsirisParams.lockout_duration_min }
