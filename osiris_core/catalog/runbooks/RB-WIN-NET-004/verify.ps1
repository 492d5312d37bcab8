# RB-WIN-NET-004 verify: is NetBIOS over TCP/IP disabled everywhere?
$on = @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE' | Where-Object { $_.TcpipNetbiosOptions -ne 2 } | ForEach-Object { "$($_.Description)" })
$status = if ($on.Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ netbios_enabled_adapters = $on } -Expected @{ netbios_enabled_adapters = @() }
