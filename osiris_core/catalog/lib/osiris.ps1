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

# A directory under $env:ProgramData\Osiris that only SYSTEM and Administrators can read or
# write (inheritance cut): snapshots, task workers and their results live here.
# Why: a snapshot is what a rollback writes back; a user who could edit it could make the
# rollback set anything, and a worker script a user could edit would run as SYSTEM.
function Get-OsirisPrivateDir {
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string]$Name)
    $dir = Join-Path (Join-Path $env:ProgramData 'Osiris') $Name
    if (-not (Test-Path -LiteralPath $dir)) { New-Item -ItemType Directory -Path $dir -Force -ErrorAction Stop | Out-Null }
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($sid in @('S-1-5-18', 'S-1-5-32-544')) {
        $who = New-Object System.Security.Principal.SecurityIdentifier($sid)
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $dir -AclObject $acl -ErrorAction Stop
    return $dir
}

# The pre-change snapshot: what a remediate is about to change, saved before it changes it, as
# $env:ProgramData\Osiris\snapshots\<runbook>-<UTC time>.json; rollback.ps1 reads the newest.
function Save-OsirisSnapshot {
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][System.Collections.IDictionary]$Data)
    $dir = Get-OsirisPrivateDir -Name 'snapshots'
    $ts = (Get-Date).ToUniversalTime().ToString("yyyyMMdd'T'HHmmssfff'Z'")
    $path = Join-Path $dir "$OsirisRunbook-$ts.json"
    $doc = [ordered]@{ runbook = $OsirisRunbook; taken = $ts; data = $Data }
    Set-Content -LiteralPath $path -Value ($doc | ConvertTo-Json -Compress -Depth 8) -Encoding UTF8 -ErrorAction Stop
    return $path
}

# The newest snapshot's data for this runbook, used once. Throws when there is none, when it is
# older than -MaxAgeMinutes (not this run's: a remediate that failed before it saved one must not
# make the rollback write back a stale state), or when it names another runbook. It is renamed
# *.restored before it is returned, so a later rollback never restores it again (nothing to
# restore is an error, never a silent "reverted").
function Get-OsirisSnapshot {
    [CmdletBinding()]
    param([int]$MaxAgeMinutes = 30)
    $dir = Get-OsirisPrivateDir -Name 'snapshots'
    $newest = Get-ChildItem -LiteralPath $dir -Filter "$OsirisRunbook-*.json" -File -ErrorAction Stop | Where-Object { $_.Name -like '*.json' } | Sort-Object -Property Name -Descending | Select-Object -First 1
    if ($null -eq $newest) { throw "no snapshot of $OsirisRunbook under $dir; nothing to roll back to" }
    $doc = Get-Content -LiteralPath $newest.FullName -Raw -Encoding UTF8 -ErrorAction Stop | ConvertFrom-Json
    if ($doc.runbook -ne $OsirisRunbook) { throw "snapshot $($newest.Name) is not $OsirisRunbook's" }
    $utc = [Globalization.DateTimeStyles]'AssumeUniversal, AdjustToUniversal'
    $taken = [datetime]::ParseExact("$($doc.taken)", "yyyyMMdd'T'HHmmssfff'Z'", [Globalization.CultureInfo]::InvariantCulture, $utc)
    if (((Get-Date).ToUniversalTime() - $taken).TotalMinutes -gt $MaxAgeMinutes) { throw "the newest snapshot of $OsirisRunbook was taken at $($doc.taken), not by this run; nothing restored" }
    Rename-Item -LiteralPath $newest.FullName -NewName "$($newest.Name).restored" -ErrorAction Stop
    return $doc.data
}

# One value from a snapshot, or a throw naming what is missing (a rollback that reads a key
# its remediate never saved must fail, not restore $null).
function Get-OsirisSnapshotItem {
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)]$Snapshot, [Parameter(Mandatory = $true)][string]$Key)
    $prop = $Snapshot.PSObject.Properties[$Key]
    if ($null -eq $prop) { throw "the snapshot of $OsirisRunbook holds no '$Key'" }
    return $prop.Value
}

# Run a worker script as a one-shot scheduled task under SYSTEM, the pattern Ansible's
# win_updates uses. Why: Windows refuses some work to a WinRM network logon (the Windows Update
# Agent's Download()/Install() answer E_ACCESSDENIED), and work started in the session (a
# Start-MpScan -AsJob) dies when WinRM closes it. The worker gets -ArgsFile (this hashtable as
# JSON) and -ResultFile (where it writes one JSON object); both live in a private directory.
# -TimeoutSec bounds the wait (below the agent's phase timeout); a task still running then is
# left to finish and the call throws, so nothing claims a result it has not seen. -NoWait starts
# the task and returns (fire-and-verify: the runbook's verify judges the outcome).
function Invoke-OsirisSystemTask {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$Worker,
        [hashtable]$Arguments = @{},
        [int]$TimeoutSec = 240,
        [switch]$NoWait
    )
    $dir = Get-OsirisPrivateDir -Name 'tasks'
    $folder = '\Osiris\'
    $prefix = "Osiris-$OsirisRunbook-"
    foreach ($old in @(Get-ScheduledTask -TaskPath $folder -ErrorAction SilentlyContinue | Where-Object { $_.TaskName -like "$prefix*" })) {
        if ("$($old.State)" -eq 'Running') { throw "task $($old.TaskName) from an earlier run is still running; not starting another" }
        Unregister-ScheduledTask -TaskName $old.TaskName -TaskPath $folder -Confirm:$false -ErrorAction Stop
        Remove-Item -Path (Join-Path $dir "$($old.TaskName).*") -Force -ErrorAction SilentlyContinue
    }
    $id = [guid]::NewGuid().ToString('N')
    $name = "$prefix$id"
    $workerFile = Join-Path $dir "$name.ps1"
    $argsFile = Join-Path $dir "$name.args.json"
    $resultFile = Join-Path $dir "$name.result.json"
    Set-Content -LiteralPath $workerFile -Value $Worker -Encoding UTF8 -ErrorAction Stop
    Set-Content -LiteralPath $argsFile -Value ($Arguments | ConvertTo-Json -Compress -Depth 6) -Encoding UTF8 -ErrorAction Stop
    $exe = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
    $argv = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$workerFile`" -ArgsFile `"$argsFile`" -ResultFile `"$resultFile`""
    $action = New-ScheduledTaskAction -Execute $exe -Argument $argv
    $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
    $limit = if ($NoWait) { New-TimeSpan -Hours 4 } else { New-TimeSpan -Seconds ([Math]::Max($TimeoutSec * 4, 3600)) }
    $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit $limit -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    Register-ScheduledTask -TaskName $name -TaskPath $folder -Action $action -Principal $principal -Settings $settings -Force -ErrorAction Stop | Out-Null
    Start-ScheduledTask -TaskName $name -TaskPath $folder -ErrorAction Stop
    if ($NoWait) { return [pscustomobject]@{ task = $name; started = $true } }
    $deadline = (Get-Date).AddSeconds($TimeoutSec)
    do {
        Start-Sleep -Seconds 3
        $state = "$((Get-ScheduledTask -TaskName $name -TaskPath $folder -ErrorAction Stop).State)"
    } while (($state -eq 'Running' -or $state -eq 'Queued') -and (Get-Date) -lt $deadline)
    if ($state -eq 'Running' -or $state -eq 'Queued') { throw "task $name still running after $TimeoutSec s; left to finish, the next detect judges it" }
    $info = Get-ScheduledTaskInfo -TaskName $name -TaskPath $folder -ErrorAction Stop
    $code = [int64]$info.LastTaskResult
    $result = $null
    if (Test-Path -LiteralPath $resultFile) { $result = Get-Content -LiteralPath $resultFile -Raw -Encoding UTF8 -ErrorAction Stop | ConvertFrom-Json }
    Unregister-ScheduledTask -TaskName $name -TaskPath $folder -Confirm:$false -ErrorAction Stop
    Remove-Item -LiteralPath $workerFile, $argsFile, $resultFile -Force -ErrorAction SilentlyContinue
    if ($code -ne 0) { throw "task $name ended with LastTaskResult 0x$('{0:X8}' -f $code): $($result.error)" }
    if ($null -eq $result) { throw "task $name ended without writing its result" }
    return $result
}

# The security policy's [System Access] values as secedit exports them (an INI with stable key
# names: MinimumPasswordLength, LockoutBadCount, …), never `net accounts` prose (localised).
# -Merged exports the effective policy (domain GPO merged over local).
function Get-OsirisSecurityPolicy {
    [CmdletBinding()]
    param([switch]$Merged)
    $dir = Get-OsirisPrivateDir -Name 'tmp'
    $cfg = Join-Path $dir "secedit-$([guid]::NewGuid().ToString('N')).inf"
    $argv = @('/export')
    if ($Merged) { $argv += '/mergedpolicy' }
    $argv += @('/cfg', $cfg, '/areas', 'SECURITYPOLICY', '/quiet')
    secedit.exe @argv | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "secedit /export exited $LASTEXITCODE" }
    $values = @{}
    $section = ''
    foreach ($line in Get-Content -LiteralPath $cfg -Encoding Unicode -ErrorAction Stop) {
        if ($line -match '^\s*\[(.+)\]\s*$') { $section = $Matches[1]; continue }
        if ($section -eq 'System Access' -and $line -match '^\s*(\w+)\s*=\s*(-?\d+)\s*$') { $values[$Matches[1]] = [int64]$Matches[2] }
    }
    Remove-Item -LiteralPath $cfg -Force -ErrorAction SilentlyContinue
    return $values
}

# Which of these [System Access] keys a domain GPO sets: the resultant set of policy names a
# GPO other than the local one at precedence 1, or the effective value differs from the local.
# Why: a value a GPO owns comes back at the next policy refresh; setting it locally flaps.
function Get-OsirisGpoManagedKeys {
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string[]]$Keys, [hashtable]$Local, [hashtable]$Effective)
    $managed = @()
    $rsop = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName 'RSOP_SecuritySettingNumeric' -ErrorAction SilentlyContinue)
    foreach ($k in $Keys) {
        $byGpo = @($rsop | Where-Object { $_.KeyName -eq $k -and $_.precedence -eq 1 -and $_.GPOID -ne 'LocalGPO' }).Count -gt 0
        if ($byGpo -or "$($Local[$k])" -ne "$($Effective[$k])") { $managed += $k }
    }
    return , $managed
}

# Apply [System Access] values through `secedit /configure` with a generated INF (the local
# security database; what `net accounts` would set, without parsing or depending on its text).
function Import-OsirisSecurityPolicy {
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][System.Collections.IDictionary]$Values)
    $dir = Get-OsirisPrivateDir -Name 'tmp'
    $stem = Join-Path $dir "secedit-$([guid]::NewGuid().ToString('N'))"
    $lines = @('[Unicode]', 'Unicode=yes', '[System Access]')
    foreach ($k in $Values.Keys) { $lines += "$k = $([int64]$Values[$k])" }
    $lines += @('[Version]', 'signature="$CHICAGO$"', 'Revision=1')
    Set-Content -LiteralPath "$stem.inf" -Value $lines -Encoding Unicode -ErrorAction Stop
    secedit.exe /configure /db "$stem.sdb" /cfg "$stem.inf" /areas SECURITYPOLICY /quiet | Out-Null
    $rc = $LASTEXITCODE
    Remove-Item -LiteralPath "$stem.inf", "$stem.sdb", "$stem.jfm" -Force -ErrorAction SilentlyContinue
    if ($rc -ne 0) { throw "secedit /configure exited $rc" }
}
