# Osiris helpers, placed by render() before every Windows phase script.
# Why: a script must print exactly one JSON object on stdout; every result goes through
# Write-OsirisResult so the shape is the same everywhere and nothing else reaches the pipeline.

function Write-OsirisResult {
    param(
        [Parameter(Mandatory = $true)][string]$Status,
        [hashtable]$Observed = @{},
        [hashtable]$Expected = @{}
    )
    $result = [ordered]@{ status = $Status; observed = $Observed; expected = $Expected }
    $result | ConvertTo-Json -Compress -Depth 6
}

function Write-OsirisDone {
    param([bool]$Changed, [string]$Action)
    Write-OsirisResult -Status 'compliant' -Observed @{ changed = $Changed; action = $Action }
}

trap {
    Write-OsirisResult -Status 'error' -Observed @{ error = "$($_.Exception.Message)" }
    exit 1
}
