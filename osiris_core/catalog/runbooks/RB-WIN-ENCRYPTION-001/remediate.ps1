# RB-WIN-ENCRYPTION-001 remediate: turn BitLocker on for the system volume.
$mp = $OsirisParams.mount_point
Add-BitLockerKeyProtector -ErrorAction Stop -MountPoint $mp -RecoveryPasswordProtector | Out-Null
Enable-BitLocker -ErrorAction Stop -MountPoint $mp -EncryptionMethod $OsirisParams.encryption_method -TpmProtector -SkipHardwareTest | Out-Null
Write-OsirisDone -Changed $true -Action "BitLocker enabled on $mp"
