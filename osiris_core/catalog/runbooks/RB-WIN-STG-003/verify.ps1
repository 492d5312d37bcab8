# RB-WIN-STG-003 verify: are all disks and volumes healthy?
$disks = @(Get-PhysicalDisk | Where-Object { "$($_.HealthStatus)" -ne 'Healthy' } | ForEach-Object { "$($_.FriendlyName)" })
$vols = @(Get-Volume | Where-Object { $_.DriveType -eq 'Fixed' -and $_.DriveLetter -and "$($_.HealthStatus)" -ne 'Healthy' } | ForEach-Object { "$($_.DriveLetter)" })
$status = if ($disks.Count -eq 0 -and $vols.Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ unhealthy_disks = $disks; unhealthy_volumes = $vols } -Expected @{ unhealthy_disks = @(); unhealthy_volumes = @() }
