# RB-WIN-AV-001 remediate: start Defender, update signatures, start a quick scan.
# The scan runs in a one-shot SYSTEM scheduled task, not `Start-MpScan -AsJob`: a job belongs to
# the WinRM session and dies when the session closes. Fire-and-verify: the scan takes minutes, so
# this script does not wait for it; verify judges what this runbook fixes (engine running,
# signatures fresh), and Defender records the scan itself (QuickScanEndTime).
$svc = Get-Service -Name 'WinDefend'
if ("$($svc.Status)" -ne 'Running') { Start-Service -ErrorAction Stop -Name 'WinDefend' }
Update-MpSignature -ErrorAction Stop
$scan = @'
param([string]$ArgsFile, [string]$ResultFile)
$ErrorActionPreference = 'Stop'
try {
    Start-MpScan -ScanType QuickScan -ErrorAction Stop
    Set-Content -LiteralPath $ResultFile -Value '{"scan":"QuickScan","error":""}' -Encoding UTF8 -ErrorAction Stop
} catch {
    Set-Content -LiteralPath $ResultFile -Value (@{ scan = 'QuickScan'; error = "$($_.Exception.Message)" } | ConvertTo-Json -Compress) -Encoding UTF8 -ErrorAction Stop
    exit 1
}
'@
$t = Invoke-OsirisSystemTask -Worker $scan -NoWait
Write-OsirisDone -Changed $true -Action "signatures updated, quick scan started as SYSTEM (task $($t.task))"
