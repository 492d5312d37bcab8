# RB-WIN-AD-001 verify: does this domain controller report replication failures?
$role = (Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole
if ($role -lt 4) {
    Write-OsirisResult -Status 'compliant' -Observed @{ is_domain_controller = $false; replication_failures = 0 } -Expected @{ replication_failures = 0 }
    exit 0
}
$fails = @(Get-ADReplicationFailure -Target $env:COMPUTERNAME | Where-Object { $_.FailureCount -gt 0 })
$status = if ($fails.Count -le $OsirisParams.max_replication_failures) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ is_domain_controller = $true; replication_failures = $fails.Count } -Expected @{ replication_failures = $OsirisParams.max_replication_failures }
