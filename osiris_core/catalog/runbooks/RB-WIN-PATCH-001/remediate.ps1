# RB-WIN-PATCH-001 remediate: install pending Critical and Important updates through a one-shot
# SYSTEM scheduled task. Why: the Windows Update Agent refuses Download()/Install() to a WinRM
# network logon (E_ACCESSDENIED, 0x80070005); a task running as SYSTEM is a local logon, the
# pattern Ansible's win_updates uses. The worker below runs inside the task and writes its
# result as JSON; this script polls the task (bounded), reads the result and removes the task.
$worker = @'
param([string]$ArgsFile, [string]$ResultFile)
$ErrorActionPreference = 'Stop'
$out = [ordered]@{ installed = 0; result_code = 0; reboot_required = $false; kbs = @(); error = '' }
try {
    $session = New-Object -ComObject 'Microsoft.Update.Session'
    $found = $session.CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software' and IsHidden=0").Updates
    $todo = New-Object -ComObject 'Microsoft.Update.UpdateColl'
    foreach ($u in $found) {
        if (@('Critical', 'Important') -contains "$($u.MsrcSeverity)") {
            if (-not $u.EulaAccepted) { $u.AcceptEula() }
            [void]$todo.Add($u)
            $out.kbs += @($u.KBArticleIDs | ForEach-Object { "KB$_" })
        }
    }
    if ($todo.Count -gt 0) {
        $dl = $session.CreateUpdateDownloader(); $dl.Updates = $todo; [void]$dl.Download()
        $inst = $session.CreateUpdateInstaller(); $inst.Updates = $todo; $res = $inst.Install()
        $out.installed = $todo.Count
        $out.result_code = [int]$res.ResultCode
        $out.reboot_required = [bool]$res.RebootRequired
    }
} catch {
    $out.error = "$($_.Exception.Message)"
}
Set-Content -LiteralPath $ResultFile -Value ($out | ConvertTo-Json -Compress) -Encoding UTF8 -ErrorAction Stop
if ($out.error -ne '') { exit 1 }
'@
$r = Invoke-OsirisSystemTask -Worker $worker -TimeoutSec 240
if ([int]$r.installed -eq 0) { Write-OsirisDone -Changed $false -Action 'nothing to install'; exit 0 }
$action = "installed $($r.installed) update(s) ($(@($r.kbs) -join ', ')) as SYSTEM, result code $($r.result_code)"
if ($r.reboot_required) {
    # Runs only inside the maintenance window (the manifest requires one); allow_reboot says
    # whether this run may restart the host or only report that it must be restarted.
    if ($OsirisParams.allow_reboot) {
        shutdown.exe /r /t 300 /c 'Osiris: updates installed' | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "shutdown /r exited $LASTEXITCODE" }
        $action += '; reboot required, scheduled in 5 minutes'
    } else {
        $action += '; reboot required, not performed (allow_reboot is false)'
    }
}
Write-OsirisDone -Changed $true -Action $action
