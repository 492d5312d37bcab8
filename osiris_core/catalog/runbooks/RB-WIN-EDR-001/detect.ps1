# RB-WIN-EDR-001 detect: is a third-party EDR agent present and running? (detect only)
# Read from the service control manager and the registry (structured, locale independent):
# CrowdStrike Falcon runs CSFalconService, SentinelOne SentinelAgent, Microsoft Defender for
# Endpoint the Sense service, and MDE counts only when the host is onboarded (OnboardingState 1).
$agents = [ordered]@{ falcon = 'CSFalconService'; sentinelone = 'SentinelAgent'; mde = 'Sense' }
$installed = @()
$running = @()
foreach ($name in $agents.Keys) {
    $svc = Get-Service -Name $agents[$name] -ErrorAction SilentlyContinue
    if ($null -ne $svc) {
        $installed += $name
        if ("$($svc.Status)" -eq 'Running') { $running += $name }
    }
}
$onboarded = $false
$atp = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows Advanced Threat Protection\Status' -Name 'OnboardingState' -ErrorAction SilentlyContinue
if ($null -ne $atp) { $onboarded = ([int]$atp.OnboardingState -eq 1) }
$healthy = @($running | Where-Object { $_ -ne 'mde' -or $onboarded })
$want = $OsirisParams.expected
$ok = if ($want -eq 'any') { $healthy.Count -gt 0 } else { $healthy -contains $want }
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ installed = @($installed); running = @($running); mde_onboarded = $onboarded; healthy = @($healthy) } -Expected @{ expected = $want }
