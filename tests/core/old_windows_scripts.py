# ruff: noqa: E501 - the script is kept verbatim, as it shipped
"""Windows scripts as the catalogue shipped them before issue 15, kept to prove that the lint and
the lab now catch what was wrong with them (never rendered or sent anywhere else)."""

# RB-WIN-PATCH-001's remediate before issue 15: WUA Download()/Install() straight from the WinRM
# session, which Windows refuses (E_ACCESSDENIED, 0x80070005) to a network logon.
OLD_PATCH_REMEDIATE = r"""# RB-WIN-PATCH-001 remediate: install pending Critical and Important updates.
$session = New-Object -ComObject 'Microsoft.Update.Session'
$found = $session.CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software' and IsHidden=0").Updates
$todo = New-Object -ComObject 'Microsoft.Update.UpdateColl'
foreach ($u in $found) {
    if (@('Critical', 'Important') -contains "$($u.MsrcSeverity)") {
        if (-not $u.EulaAccepted) { $u.AcceptEula() }
        [void]$todo.Add($u)
    }
}
if ($todo.Count -eq 0) { Write-OsirisDone -Changed $false -Action 'nothing to install'; exit 0 }
$dl = $session.CreateUpdateDownloader(); $dl.Updates = $todo; [void]$dl.Download()
$inst = $session.CreateUpdateInstaller(); $inst.Updates = $todo; $res = $inst.Install()
if ($res.RebootRequired -and $OsirisParams.allow_reboot) { shutdown.exe /r /t 300 /c 'Osiris: updates installed' | Out-Null }
Write-OsirisDone -Changed $true -Action "installed $($todo.Count) update(s), result code $($res.ResultCode)"
"""
