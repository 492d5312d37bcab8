# RB-WIN-SEC-004 verify: read minimum length and maximum age.
$na = net.exe accounts
function Get-NetAccountsValue([string]$Label) {
    $line = $na | Where-Object { $_ -like "$Label*" } | Select-Object -First 1
    if ($null -eq $line) { return '' }
    return ($line -split ':', 2)[1].Trim()
}
$l = Get-NetAccountsValue 'Minimum password length'
$a = Get-NetAccountsValue 'Maximum password age'
$li = 0; $ai = 0
$lok = [int]::TryParse($l, [ref]$li) -and $li -ge $OsirisParams.min_password_length
$aok = [int]::TryParse($a, [ref]$ai) -and $ai -le $OsirisParams.max_password_age_days
$status = if ($lok -and $aok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ min_password_length = $l; max_password_age_days = $a } -Expected @{ min_password_length = $OsirisParams.min_password_length; max_password_age_days = $OsirisParams.max_password_age_days }
