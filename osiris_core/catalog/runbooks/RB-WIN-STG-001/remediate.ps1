# RB-WIN-STG-001 remediate: delete old temp files and the Windows Update download cache.
$cut = (Get-Date).AddDays(-$OsirisParams.temp_age_days)
$dirs = @("$env:SystemRoot\Temp", "$env:TEMP")
foreach ($dir in $dirs) {
    Get-ChildItem -Path $dir -Recurse -File -Force -ErrorAction SilentlyContinue | Where-Object { $_.LastWriteTime -lt $cut } | Remove-Item -Force -ErrorAction SilentlyContinue
}
Stop-Service -ErrorAction Stop -Name 'wuauserv' -Force
Remove-Item -Path "$env:SystemRoot\SoftwareDistribution\Download\*" -Recurse -Force -ErrorAction SilentlyContinue
Start-Service -ErrorAction Stop -Name 'wuauserv'
Write-OsirisDone -Changed $true -Action 'temp files and update cache cleaned'
