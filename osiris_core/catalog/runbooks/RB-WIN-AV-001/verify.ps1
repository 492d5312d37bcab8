# RB-WIN-AV-001 verify: is Defender enabled with current signatures?
$svc = Get-Service -Name 'WinDefend' -ErrorAction SilentlyContinue
$running = ($null -ne $svc) -and ("$($svc.Status)" -eq 'Running')
$mp = Get-MpComputerStatus
$age = [int]$mp.AntivirusSignatureAge
$ok = $running -and $mp.AntivirusEnabled -and ($age -le $OsirisParams.max_signature_age_days)
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ antivirus_enabled = [bool]$mp.AntivirusEnabled; service_running = $running; signature_age_days = $age } -Expected @{ antivirus_enabled = $true; service_running = $true; signature_age_days = $OsirisParams.max_signature_age_days }
