# RB-WIN-UPD-002 verify: is the client registered with the site's WSUS server?
$pol = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate'
$cur = "$((Get-ItemProperty -Path $pol -ErrorAction SilentlyContinue).WUServer)"
$sid = $null -ne (Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate' -ErrorAction SilentlyContinue).SusClientId
$status = 'compliant'
if ($OsirisParams.wsus_server -ne '' -and ($cur -ne $OsirisParams.wsus_server -or -not $sid)) { $status = 'drift' }
Write-OsirisResult -Status $status -Observed @{ wu_server = $cur; sus_client_id_present = $sid } -Expected @{ wu_server = $OsirisParams.wsus_server; sus_client_id_present = $true }
