# RB-WIN-STG-003 remediate: scan each unhealthy volume online (Repair-Volume -Scan).
# The scans run in a one-shot SYSTEM scheduled task, polled to completion with a bound below the
# agent's phase timeout: a scan in the session dies with it when WinRM closes the shell.
$vols = @(Get-Volume | Where-Object { $_.DriveType -eq 'Fixed' -and $_.DriveLetter -and "$($_.HealthStatus)" -ne 'Healthy' })
if ($vols.Count -eq 0) { Write-OsirisDone -Changed $false -Action 'scanned 0 volume(s)'; exit 0 }
$scan = @'
param([string]$ArgsFile, [string]$ResultFile)
$ErrorActionPreference = 'Stop'
$letters = @((Get-Content -LiteralPath $ArgsFile -Raw | ConvertFrom-Json).letters)
$out = [ordered]@{ scanned = @(); error = '' }
try {
    foreach ($l in $letters) { [void](Repair-Volume -DriveLetter $l -Scan -ErrorAction Stop); $out.scanned += "$l" }
} catch {
    $out.error = "$($_.Exception.Message)"
}
Set-Content -LiteralPath $ResultFile -Value ($out | ConvertTo-Json -Compress) -Encoding UTF8 -ErrorAction Stop
if ($out.error -ne '') { exit 1 }
'@
$r = Invoke-OsirisSystemTask -Worker $scan -Arguments @{ letters = @($vols | ForEach-Object { "$($_.DriveLetter)" }) } -TimeoutSec 240
Write-OsirisDone -Changed $true -Action "scanned $(@($r.scanned).Count) volume(s) as SYSTEM"
