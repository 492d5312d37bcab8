# RB-WIN-SEC-005 remediate: resume BitLocker protection.
$v = Get-BitLockerVolume -MountPoint $OsirisParams.mount_point
if ("$($v.VolumeStatus)" -eq 'FullyDecrypted') { throw 'volume is not encrypted; see RB-WIN-ENCRYPTION-001' }
Resume-BitLocker -ErrorAction Stop -MountPoint $OsirisParams.mount_point | Out-Null
Write-OsirisDone -Changed $true -Action 'BitLocker protection resumed'
