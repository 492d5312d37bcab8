# RB-WIN-NET-001 detect: do connected adapters use the site's DNS servers?
if ($OsirisParams.dns_servers -eq '') { throw 'dns_servers is not set for this site' }
$want = $OsirisParams.dns_servers -split ','
$obs = @{}; $bad = 0
foreach ($a in Get-NetAdapter | Where-Object { $_.Status -eq 'Up' }) {
    $have = @((Get-DnsClientServerAddress -InterfaceIndex $a.ifIndex -AddressFamily IPv4).ServerAddresses)
    $obs[$a.Name] = $have -join ','
    if (($have -join ',') -ne ($want -join ',')) { $bad++ }
}
$status = if ($bad -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ adapters = $obs } -Expected @{ dns_servers = $OsirisParams.dns_servers }
