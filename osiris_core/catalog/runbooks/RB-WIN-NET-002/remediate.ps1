# RB-WIN-NET-002 remediate: restart the adapter carrying the default route and renew DHCP.
$route = Get-NetRoute -DestinationPrefix '0.0.0.0/0' -ErrorAction SilentlyContinue | Sort-Object -Property RouteMetric | Select-Object -First 1
$alias = if ($null -ne $route) { $route.InterfaceAlias } else { (Get-NetAdapter | Where-Object { $_.HardwareInterface } | Select-Object -First 1).Name }
Restart-NetAdapter -ErrorAction Stop -Name $alias -Confirm:$false
ipconfig.exe /renew | Out-Null
Write-OsirisDone -Changed $true -Action "adapter $alias restarted"
