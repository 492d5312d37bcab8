# RB-WIN-NET-001 rollback: each adapter's IPv4 DNS servers back to the newest snapshot's (none
# saved: back to the servers DHCP gives).
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$n = 0
foreach ($a in @($snap.dns_servers)) {
    $servers = @($a.servers | Where-Object { "$_" -ne '' })
    if ($servers.Count -eq 0) {
        Set-DnsClientServerAddress -ErrorAction Stop -InterfaceIndex $a.index -ResetServerAddresses
    } else {
        Set-DnsClientServerAddress -ErrorAction Stop -InterfaceIndex $a.index -ServerAddresses $servers
    }
    $n++
}
Clear-DnsClientCache -ErrorAction Stop
Write-OsirisDone -Changed $true -Action "DNS servers restored on $n adapter(s)"
