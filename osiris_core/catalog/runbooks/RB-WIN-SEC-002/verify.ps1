# RB-WIN-SEC-002 verify: which required audit subcategories lack success+failure auditing?
$guids = @(
    '{0CCE9215-69AE-11D9-BED3-505054503030}',
    '{0CCE9216-69AE-11D9-BED3-505054503030}',
    '{0CCE9217-69AE-11D9-BED3-505054503030}',
    '{0CCE923F-69AE-11D9-BED3-505054503030}',
    '{0CCE9235-69AE-11D9-BED3-505054503030}',
    '{0CCE9237-69AE-11D9-BED3-505054503030}',
    '{0CCE922F-69AE-11D9-BED3-505054503030}',
    '{0CCE9228-69AE-11D9-BED3-505054503030}',
    '{0CCE922B-69AE-11D9-BED3-505054503030}'
)
$missing = @()
foreach ($g in $guids) {
    $row = auditpol.exe /get "/subcategory:$g" /r | ConvertFrom-Csv | Select-Object -First 1
    $setting = "$($row.'Inclusion Setting')"
    if (-not ($setting -match 'Success' -and $setting -match 'Failure')) { $missing += "$($row.Subcategory) $g" }
}
$status = if ($missing.Count -eq 0) { 'compliant' } else { 'drift' }
Write-OsirisResult -Status $status -Observed @{ missing = $missing } -Expected @{ missing = @() }
