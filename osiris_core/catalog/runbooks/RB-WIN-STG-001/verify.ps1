# RB-WIN-STG-001 verify: how much of the system drive is free?
$d = Get-Volume -DriveLetter ($env:SystemDrive.TrimEnd(':'))
$pct = [math]::Round(100 * $d.SizeRemaining / $d.Size, 1)
$status = if ($pct -ge $OsirisParams.min_free_percent) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ free_percent = $pct; free_gb = [math]::Round($d.SizeRemaining / 1073741824, 1) } -Expected @{ free_percent = $OsirisParams.min_free_percent }
