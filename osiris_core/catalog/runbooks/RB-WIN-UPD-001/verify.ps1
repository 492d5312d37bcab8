# RB-WIN-UPD-001 verify: is the update client healthy?
$wu = "$((Get-Service -Name 'wuauserv').StartType)"
$bits = "$((Get-Service -Name 'BITS').StartType)"
$since = (Get-Date).AddHours(-24)
$errs = @(Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'Microsoft-Windows-WindowsUpdateClient'; Level = 2; StartTime = $since } -ErrorAction SilentlyContinue).Count
$ok = $wu -ne 'Disabled' -and $bits -ne 'Disabled' -and $errs -le $OsirisParams.max_errors_24h
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ wuauserv_start_type = $wu; bits_start_type = $bits; errors_24h = $errs } -Expected @{ errors_24h = $OsirisParams.max_errors_24h }
