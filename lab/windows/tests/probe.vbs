' Run by cscript.exe inside `scm-lab run --windows -- cmd /c "..."` (lab/tests/windows.rs), after
' `reg add` wrote a value in the same prefix: that value is there, the lab's environment reached
' this grandchild of scm-lab, and WScript.Quit's code comes back as the run's exit code.
Option Explicit
Dim shell, value, reader
Set shell = CreateObject("WScript.Shell")
value = shell.RegRead("HKCU\Software\ScmLabProbe\Written")
reader = shell.Environment("PROCESS")("SCM_LAB_READER")
If value = "by-reg.exe" Then
    WScript.Echo "ok registry: cscript read the value reg.exe wrote: " & value
Else
    WScript.Echo "FAIL registry: " & value
End If
If reader <> "" And shell.Environment("PROCESS")("SCM_LAB_BRIDGE") <> "" Then
    WScript.Echo "ok environment: SCM_LAB_READER is " & reader & ", SCM_LAB_BRIDGE is set"
Else
    WScript.Echo "FAIL environment: SCM_LAB_READER is '" & reader & "'"
End If
WScript.Quit 42
