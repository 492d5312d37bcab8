# RB-WIN-TIME-001 detect: how far is this host's clock from its configured time source?
# The source comes from W32Time's registry parameters (Type, NtpServer), the offset from one
# SNTP exchange with it over UDP 123 (RFC 4330: offset = ((t2 - t1) + (t3 - t4)) / 2), so
# nothing here reads w32tm's localised text. A reply that does not echo our transmit time is
# not an answer to us and is refused.
function ConvertTo-OsirisNtpStamp {
    param([Parameter(Mandatory = $true)][DateTime]$Time, [Parameter(Mandatory = $true)][byte[]]$Buffer, [int]$Offset)
    $ticks = ($Time.ToUniversalTime() - [DateTime]::new(1900, 1, 1, 0, 0, 0, [DateTimeKind]::Utc)).Ticks
    $sec = [uint64][math]::Floor($ticks / 10000000)
    $frac = [uint64][math]::Floor((($ticks % 10000000) / 10000000) * 4294967296)
    for ($i = 0; $i -lt 4; $i++) {
        $Buffer[$Offset + $i] = [byte](($sec -shr (24 - 8 * $i)) -band 0xFF)
        $Buffer[$Offset + 4 + $i] = [byte](($frac -shr (24 - 8 * $i)) -band 0xFF)
    }
}
function ConvertFrom-OsirisNtpStamp {
    param([Parameter(Mandatory = $true)][byte[]]$Buffer, [int]$Offset)
    [uint64]$sec = 0; [uint64]$frac = 0
    for ($i = 0; $i -lt 4; $i++) {
        $sec = $sec * 256 + $Buffer[$Offset + $i]
        $frac = $frac * 256 + $Buffer[$Offset + 4 + $i]
    }
    $epoch = [DateTime]::new(1900, 1, 1, 0, 0, 0, [DateTimeKind]::Utc)
    $epoch.AddTicks([int64]($sec * 10000000 + [math]::Floor($frac * 10000000 / 4294967296)))
}
function Get-OsirisNtpOffsetMs {
    param([Parameter(Mandatory = $true)][string]$Server)
    $udp = New-Object System.Net.Sockets.UdpClient
    try {
        $udp.Client.ReceiveTimeout = 3000
        $req = New-Object byte[] 48
        $req[0] = 0x23  # LI 0, version 4, mode 3 (client)
        $t1 = [DateTime]::UtcNow
        ConvertTo-OsirisNtpStamp -Time $t1 -Buffer $req -Offset 40
        [void]$udp.Send($req, 48, $Server, 123)
        $from = New-Object System.Net.IPEndPoint ([System.Net.IPAddress]::Any, 0)
        $resp = $udp.Receive([ref]$from)
        $t4 = [DateTime]::UtcNow
    } finally {
        $udp.Close()
    }
    if ($resp.Length -lt 48) { throw 'short NTP reply' }
    if (($resp[0] -band 0x07) -ne 4 -or $resp[1] -eq 0 -or $resp[1] -gt 15) { throw 'not a synchronised NTP server reply' }
    for ($i = 0; $i -lt 8; $i++) {
        if ($resp[24 + $i] -ne $req[40 + $i]) { throw 'NTP reply does not answer our request' }
    }
    $t2 = ConvertFrom-OsirisNtpStamp -Buffer $resp -Offset 32
    $t3 = ConvertFrom-OsirisNtpStamp -Buffer $resp -Offset 40
    [int64][math]::Round((($t2 - $t1).TotalMilliseconds + ($t3 - $t4).TotalMilliseconds) / 2)
}
$par = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\Parameters' -ErrorAction Stop
$type = "$($par.Type)"
$src = ''
if ($type -eq 'NT5DS') {
    try { $src = "$(([System.DirectoryServices.ActiveDirectory.Domain]::GetComputerDomain()).PdcRoleOwner.Name)" } catch { $src = '' }
} elseif ($type -eq 'NTP' -or $type -eq 'AllSync') {
    $src = (("$($par.NtpServer)".Trim() -split '\s+')[0] -split ',')[0]
}
$offset = $null
$reachable = $false
if ($src -ne '') {
    try { $offset = Get-OsirisNtpOffsetMs -Server $src; $reachable = $true } catch { $reachable = $false }
}
$max = [int64]$OsirisParams.max_offset_ms
$ok = $reachable -and ([math]::Abs($offset) -le $max)
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ source = $src; source_type = $type; reachable = $reachable; offset_ms = $offset } -Expected @{ reachable = $true; max_offset_ms = $max }
