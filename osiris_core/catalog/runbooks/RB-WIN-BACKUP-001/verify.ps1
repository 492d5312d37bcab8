# RB-WIN-BACKUP-001 verify: how old is the last successful Windows Server Backup?
$sum = Get-WBSummary
$last = $sum.LastSuccessfulBackupTime
$age = if ($null -eq $last) { -1 } else { [int]((Get-Date) - $last).TotalHours }
$ok = ($age -ge 0) -and ($age -le $OsirisParams.max_age_hours)
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ last_success = "$last"; age_hours = $age; last_result = "$($sum.LastBackupResultHR)" } -Expected @{ age_hours = $OsirisParams.max_age_hours }
