# RB-WIN-PATCH-001 verify: count missing updates and how long the oldest critical one has waited.
$session = New-Object -ComObject 'Microsoft.Update.Session'
$found = $session.CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software' and IsHidden=0").Updates
$now = Get-Date
$critical = 0; $important = 0; $overdue = 0; $oldest = 0
foreach ($u in $found) {
    $sev = "$($u.MsrcSeverity)"
    $age = [int]($now - $u.LastDeploymentChangeTime).TotalDays
    if ($sev -eq 'Critical') { $critical++; if ($age -gt $oldest) { $oldest = $age } }
    if ($sev -eq 'Important') { $important++ }
    $counts = ($sev -eq 'Critical') -or ($OsirisParams.include_important -and $sev -eq 'Important')
    if ($counts -and $age -gt $OsirisParams.critical_overdue_days) { $overdue++ }
}
$reboot = Test-Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'
$last = Get-HotFix | Sort-Object -Property InstalledOn -Descending | Select-Object -First 1
$status = if ($overdue -gt 0) { 'drift' } else { 'compliant' }
Write-OsirisResult -Status $status -Observed @{ critical_missing = $critical; important_missing = $important; overdue = $overdue; oldest_critical_days = $oldest; reboot_pending = $reboot; last_hotfix = "$($last.HotFixID)" } -Expected @{ overdue = 0; critical_overdue_days = $OsirisParams.critical_overdue_days }
