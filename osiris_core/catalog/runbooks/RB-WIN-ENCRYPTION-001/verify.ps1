# RB-WIN-ENCRYPTION-001 verify: is the system volume encrypted?
$v = Get-BitLockerVolume -MountPoint $OsirisParams.mount_point
$vs = "$($v.VolumeStatus)"
$types = @($v.KeyProtector | ForEach-Object { "$($_.KeyProtectorType)" })
$status = if (@('FullyEncrypted', 'EncryptionInProgress') -contains $vs) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ volume_status = $vs; encryption_method = "$($v.EncryptionMethod)"; protectors = $types } -Expected @{ volume_status = 'FullyEncrypted' }
