# RB-WIN-NET-001 verify: do connected adapters use the site's DNS servers?
# Without a site setting, the policy is the weaker "every connected adapter has a DNS server":
# an unset parameter must neither fail every scan nor pass silently.
$want = if ($OsirisParams.dns_servers -eq '') { @() } else { $OsirisParams.dns_servers -split ',' }
$obs = @{}; $bad = 0
foreach ($a in Get-NetAdapter | Where-Object { $_.Status -eq 'Up' }) {
    $have = @((Get-DnsClientServerAddress -InterfaceIndex $a.ifIndex -AddressFamily IPv4).ServerAddresses)
    $obs[$a.Name] = $have -join ','
    if ($want.Count -eq 0) {
        if ($have.Count -eq 0) { $bad++ }
    } elseif (($have -join ',') -ne ($want -join ',')) { $bad++ }
}
$status = if ($bad -eq 0) { 'compliant' } else { 'drift' }
$expected = if ($want.Count -eq 0) { 'any' } else { $OsirisParams.dns_servers }
Write-OsirisResult -Status $status -Observed @{ adapters = $obs } -Expected @{ dns_servers = $expected }
