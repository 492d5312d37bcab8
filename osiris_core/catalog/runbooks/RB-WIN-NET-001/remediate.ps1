# RB-WIN-NET-001 remediate: point connected adapters at the site's DNS servers.
if ($OsirisParams.dns_servers -eq '') { throw 'dns_servers is not set for this site' }
$want = $OsirisParams.dns_servers -split ','
$before = [ordered]@{}
$before.dns_servers = @(Get-NetAdapter | Where-Object { $_.Status -eq 'Up' } | ForEach-Object { [ordered]@{ index = [int]$_.ifIndex; servers = @((Get-DnsClientServerAddress -InterfaceIndex $_.ifIndex -AddressFamily IPv4).ServerAddresses) } })
[void](Save-OsirisSnapshot -Data $before)
$n = 0
foreach ($a in Get-NetAdapter | Where-Object { $_.Status -eq 'Up' }) {
    $have = @((Get-DnsClientServerAddress -InterfaceIndex $a.ifIndex -AddressFamily IPv4).ServerAddresses)
    if (($have -join ',') -ne ($want -join ',')) {
        Set-DnsClientServerAddress -ErrorAction Stop -InterfaceIndex $a.ifIndex -ServerAddresses $want
        $n++
    }
}
Clear-DnsClientCache -ErrorAction Stop
Write-OsirisDone -Changed ($n -gt 0) -Action "DNS servers set on $n adapter(s)"
