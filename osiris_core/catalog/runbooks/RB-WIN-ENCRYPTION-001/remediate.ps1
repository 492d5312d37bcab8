# RB-WIN-ENCRYPTION-001 remediate: turn BitLocker on for the system volume, never with a
# recovery password that is not escrowed first.
# The agent drives it in steps through stdin (a channel no policy or parameter can set):
#   {"step":"protect","seal_to":{"n":"<b64>","e":"<b64>"}}
#       add a recovery-password protector. Domain joined: back it up to AD DS
#       (Backup-BitLockerKeyProtector, which throws when the DC does not take it), then enable.
#       Otherwise: print the password only sealed (RSA-OAEP) to the agent's one-run key and stop
#       with encryption still off; the agent opens it, hands it to the Osiris vault and waits
#       for the server's answer.
#   {"step":"enable","protector_id":"{...}","escrow_ref":"esc_..."}
#       the server acknowledged the escrow: enable with the TPM protector.
#   {"step":"discard","protector_id":"{...}"}
#       the escrow failed: remove that protector again (only while the volume is decrypted).
$mp = $OsirisParams.mount_point
$req = (@($input) -join "`n") | ConvertFrom-Json
if ($null -eq $req -or -not $req.step) { throw 'no step on stdin: this script is run by the Osiris agent only' }
$v = Get-BitLockerVolume -MountPoint $mp -ErrorAction Stop
$encrypted = @('FullyEncrypted', 'EncryptionInProgress') -contains "$($v.VolumeStatus)"

function Get-OsirisRecoveryProtector([string]$Id) {
    $vol = Get-BitLockerVolume -MountPoint $mp -ErrorAction Stop
    $kp = @($vol.KeyProtector | Where-Object { "$($_.KeyProtectorType)" -eq 'RecoveryPassword' -and $_.KeyProtectorId -eq $Id })
    if ($kp.Count -ne 1) { throw "no recovery password protector $Id on $mp" }
    return $kp[0]
}

if ($req.step -eq 'protect') {
    if ($encrypted) {
        Write-OsirisDone -Changed $false -Action "$mp is already encrypted"
        return
    }
    $before = @($v.KeyProtector | ForEach-Object { $_.KeyProtectorId })
    $after = Add-BitLockerKeyProtector -MountPoint $mp -RecoveryPasswordProtector -ErrorAction Stop
    $new = @($after.KeyProtector | Where-Object { "$($_.KeyProtectorType)" -eq 'RecoveryPassword' -and $before -notcontains $_.KeyProtectorId })
    if ($new.Count -ne 1) { throw "expected one new recovery password protector on $mp, found $($new.Count)" }
    $kp = $new[0]
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem -ErrorAction Stop
    if ($cs.PartOfDomain) {
        Backup-BitLockerKeyProtector -MountPoint $mp -KeyProtectorId $kp.KeyProtectorId -ErrorAction Stop | Out-Null
        Enable-BitLocker -MountPoint $mp -EncryptionMethod $OsirisParams.encryption_method -TpmProtector -SkipHardwareTest -ErrorAction Stop | Out-Null
        Write-OsirisResult -Status 'compliant' -Observed @{ changed = $true; action = "recovery key backed up to AD DS ($($cs.Domain)), BitLocker enabled on $mp"; escrow = 'ad_ds'; protector_id = $kp.KeyProtectorId; escrow_ref = "$($cs.Domain)" }
        return
    }
    $rsa = New-Object System.Security.Cryptography.RSACryptoServiceProvider
    $rp = New-Object System.Security.Cryptography.RSAParameters
    $rp.Modulus = [Convert]::FromBase64String($req.seal_to.n)
    $rp.Exponent = [Convert]::FromBase64String($req.seal_to.e)
    $rsa.ImportParameters($rp)
    $sealed = [Convert]::ToBase64String($rsa.Encrypt([Text.Encoding]::UTF8.GetBytes($kp.RecoveryPassword), $true))
    Write-OsirisResult -Status 'drift' -Observed @{ changed = $true; action = "recovery password protector added to $mp; encryption waits for its escrow"; escrow_pending = @{ protector_id = $kp.KeyProtectorId; sealed = $sealed } }
    return
}

if ($req.step -eq 'enable') {
    if (-not $req.escrow_ref) { throw 'refusing to enable BitLocker: no escrow reference for the recovery password' }
    $kp = Get-OsirisRecoveryProtector -Id $req.protector_id
    if (-not $encrypted) { Enable-BitLocker -MountPoint $mp -EncryptionMethod $OsirisParams.encryption_method -TpmProtector -SkipHardwareTest -ErrorAction Stop | Out-Null }
    Write-OsirisResult -Status 'compliant' -Observed @{ changed = $true; action = "recovery key escrowed in the Osiris vault, BitLocker enabled on $mp"; escrow = 'osiris_vault'; protector_id = $kp.KeyProtectorId; escrow_ref = "$($req.escrow_ref)" }
    return
}

if ($req.step -eq 'discard') {
    if ("$($v.VolumeStatus)" -ne 'FullyDecrypted') { throw "refusing to remove a protector of $mp while it is $($v.VolumeStatus)" }
    $kp = Get-OsirisRecoveryProtector -Id $req.protector_id
    Remove-BitLockerKeyProtector -MountPoint $mp -KeyProtectorId $kp.KeyProtectorId -ErrorAction Stop | Out-Null
    Write-OsirisDone -Changed $true -Action "un-escrowed recovery password protector removed from $mp; encryption stays off"
    return
}

throw "unknown step '$($req.step)'"
