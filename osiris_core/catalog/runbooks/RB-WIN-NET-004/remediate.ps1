# RB-WIN-NET-004 remediate: disable NetBIOS over TCP/IP on every IP-enabled adapter.
$before = [ordered]@{}
$before.netbios = @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE' | ForEach-Object { [ordered]@{ index = [int]$_.Index; option = [int]$_.TcpipNetbiosOptions } })
[void](Save-OsirisSnapshot -Data $before)
$n = 0
foreach ($c in Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE' | Where-Object { $_.TcpipNetbiosOptions -ne 2 }) {
    $r = Invoke-CimMethod -InputObject $c -MethodName 'SetTcpipNetbios' -Arguments @{ TcpipNetbiosOptions = [uint32]2 }
    if ($r.ReturnValue -ne 0) { throw "SetTcpipNetbios returned $($r.ReturnValue)" }
    $n++
}
Write-OsirisDone -Changed ($n -gt 0) -Action "NetBIOS disabled on $n adapter(s)"
