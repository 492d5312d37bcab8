# RB-WIN-SVC-003 verify: does the Spooler state match the policy for this machine's role?
$dc = (Get-CimInstance -ClassName Win32_ComputerSystem).DomainRole -ge 4
$shouldRun = -not ($dc -or $OsirisParams.disable_everywhere)
$svc = Get-Service -Name 'Spooler'
$state = "$($svc.Status)"; $start = "$($svc.StartType)"
$ok = if ($shouldRun) { $state -eq 'Running' } else { $state -ne 'Running' -and $start -eq 'Disabled' }
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ is_domain_controller = $dc; status = $state; start_type = $start; should_run = $shouldRun } -Expected @{ should_run = $shouldRun }
