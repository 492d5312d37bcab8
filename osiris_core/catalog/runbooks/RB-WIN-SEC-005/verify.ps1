# RB-WIN-SEC-005 verify: is BitLocker protection active (not suspended)?
$v = Get-BitLockerVolume -MountPoint $OsirisParams.mount_point
$ps = "$($v.ProtectionStatus)"
$status = if ($ps -eq 'On') { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ protection_status = $ps; volume_status = "$($v.VolumeStatus)" } -Expected @{ protection_status = 'On' }
