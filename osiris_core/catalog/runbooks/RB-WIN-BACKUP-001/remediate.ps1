# RB-WIN-BACKUP-001 remediate: start a backup with the configured policy.
$policy = Get-WBPolicy
if ($null -eq $policy) { throw 'no Windows Server Backup policy is configured' }
Start-WBBackup -ErrorAction Stop -Policy $policy -Async | Out-Null
Write-OsirisDone -Changed $true -Action 'backup started'
