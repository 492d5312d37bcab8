# RB-WIN-NET-004 rollback: each adapter's NetBIOS-over-TCP/IP option back to the snapshot's.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
$n = 0
foreach ($s in @($snap.netbios)) {
    $c = Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter "Index = $([int]$s.index)"
    if ($null -eq $c) { throw "adapter configuration $($s.index) is gone" }
    $r = Invoke-CimMethod -InputObject $c -MethodName 'SetTcpipNetbios' -Arguments @{ TcpipNetbiosOptions = [uint32]$s.option }
    if ($r.ReturnValue -ne 0) { throw "SetTcpipNetbios returned $($r.ReturnValue)" }
    $n++
}
Write-OsirisDone -Changed $true -Action "NetBIOS option restored on $n adapter(s)"
