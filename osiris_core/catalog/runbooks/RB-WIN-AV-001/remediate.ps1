# RB-WIN-AV-001 remediate: start Defender, update signatures, queue a quick scan.
$svc = Get-Service -Name 'WinDefend'
if ("$($svc.Status)" -ne 'Running') { Start-Service -ErrorAction Stop -Name 'WinDefend' }
Update-MpSignature -ErrorAction Stop
Start-MpScan -ErrorAction Stop -ScanType QuickScan -AsJob | Out-Null
Write-OsirisDone -Changed $true -Action 'signatures updated, quick scan started'
