# RB-WIN-STG-002 remediate: re-enable VSS and create a shadow copy.
if ("$((Get-Service -Name 'VSS').StartType)" -eq 'Disabled') { Set-Service -ErrorAction Stop -Name 'VSS' -StartupType Manual }
$r = Invoke-CimMethod -ClassName Win32_ShadowCopy -MethodName 'Create' -Arguments @{ Volume = "$env:SystemDrive\" }
if ($r.ReturnValue -ne 0) { throw "shadow copy creation returned $($r.ReturnValue)" }
Write-OsirisDone -Changed $true -Action 'shadow copy created'
