# RB-WIN-ENCRYPTION-001 remediate: turn BitLocker on for the system volume.
$mp = $OsirisParams.mount_point
Add-BitLockerKeyProtector -MountPoint $mp -RecoveryPasswordProtector | Out-Null
Enable-BitLocker -MountPoint $mp -EncryptionMethod $OsirisParams.encryption_method -TpmProtector -SkipHardwareTest | Out-Null
Write-OsirisDone -Changed $true -Action "BitLocker enabled on $mp"
