# RB-WIN-STG-002 verify: is VSS usable and does the system volume have shadow copies?
$start = "$((Get-Service -Name 'VSS').StartType)"
$n = @(Get-CimInstance -ClassName Win32_ShadowCopy).Count
$status = if ($start -ne 'Disabled' -and $n -ge $OsirisParams.min_shadow_copies) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ vss_start_type = $start; shadow_copies = $n } -Expected @{ shadow_copies = $OsirisParams.min_shadow_copies }
