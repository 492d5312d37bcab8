# RB-WIN-NET-002 verify: is the default route present and is the gateway reachable?
$route = Get-NetRoute -DestinationPrefix '0.0.0.0/0' -ErrorAction SilentlyContinue | Sort-Object -Property RouteMetric | Select-Object -First 1
if ($null -eq $route) {
    Write-OsirisResult -Status 'drift' -Observed @{ adapter = ''; default_route = $false; reachable = $false } -Expected @{ default_route = $true; reachable = $true }
    exit 0
}
$target = if ($OsirisParams.ping_target -ne '') { $OsirisParams.ping_target } else { $route.NextHop }
$ok = Test-Connection -ComputerName $target -Count 2 -Quiet
$status = if ($ok) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ adapter = "$($route.InterfaceAlias)"; default_route = $true; reachable = [bool]$ok } -Expected @{ default_route = $true; reachable = $true }
