# RB-WIN-SVC-001 verify: is the DNS service running (when its role is installed)?
$svc = Get-Service -Name 'DNS' -ErrorAction SilentlyContinue
if ($null -eq $svc) {
    Write-OsirisResult -Status 'compliant' -Observed @{ installed = $false; status = 'absent'; start_type = 'absent' } -Expected @{ status = 'Running' }
    exit 0
}
$state = "$($svc.Status)"
$start = "$($svc.StartType)"
$status = if ($state -eq 'Running' -and $start -eq 'Automatic') { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ installed = $true; status = $state; start_type = $start } -Expected @{ status = 'Running'; start_type = 'Automatic' }
