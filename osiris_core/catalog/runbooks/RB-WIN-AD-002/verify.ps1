# RB-WIN-AD-002 verify: does the secure channel to the domain work?
$joined = [bool](Get-CimInstance -ClassName Win32_ComputerSystem).PartOfDomain
if (-not $joined) {
    Write-OsirisResult -Status 'compliant' -Observed @{ domain_joined = $false; secure_channel_ok = $false } -Expected @{ secure_channel_ok = $true }
    exit 0
}
$ok = Test-ComputerSecureChannel
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ domain_joined = $true; secure_channel_ok = [bool]$ok } -Expected @{ secure_channel_ok = $true }
