# RB-WIN-STG-003 remediate: scan each unhealthy volume online.
$vols = @(Get-Volume | Where-Object { $_.DriveType -eq 'Fixed' -and $_.DriveLetter -and "$($_.HealthStatus)" -ne 'Healthy' })
foreach ($v in $vols) { Repair-Volume -DriveLetter $v.DriveLetter -Scan | Out-Null }
Write-OsirisDone -Changed ($vols.Count -gt 0) -Action "scanned $($vols.Count) volume(s)"
