' An old script, as scripts were written for ISCardManage: the object made by its ProgID, every
' call late bound, errors read from Err under On Error Resume Next. Run by .ci/test-com in a lab
' with the ISO card (`scm-lab run --windows --iso`), the server registered first:
'     cscript //nologo manage.vbs T1        (T0 or T1: the protocol the lab's card speaks)
' One line per check, `ok: ...` or `FAILED: ...`, then a closing line; the exit code is the
' number of failures.
Option Explicit

Const SCARD_SHARE_SHARED = 2
Const SCARD_LEAVE_CARD = 0
Const SCARD_SPECIFIC = 6
Const SCARD_PROTOCOL_T0 = 1
Const SCARD_PROTOCOL_T1 = 2
Const SC_TYPE_BY_ID = 1
Const SC_FL_IHV_LOCAL = &H100
Const SCARD_W_WRONG_CHV = &H8010006B
Const SCARD_E_UNKNOWN_READER = &H80100009

Dim failures, reader, expected
failures = 0
reader = CreateObject("WScript.Shell").Environment("PROCESS")("SCM_LAB_READER")
expected = SCARD_PROTOCOL_T1
If WScript.Arguments.Count > 0 Then
    If WScript.Arguments(0) = "T0" Then expected = SCARD_PROTOCOL_T0
End If

Sub Check(passed, what)
    If passed Then
        WScript.Echo "ok: manage.vbs: " & what
    Else
        WScript.Echo "FAILED: manage.vbs: " & what
        failures = failures + 1
    End If
End Sub

' What Err holds, for the lines.
Function Outcome()
    If Err.Number = 0 Then
        Outcome = "no error"
    Else
        Outcome = "Err.Number &H" & Hex(Err.Number) & ", Err.Description """ & Err.Description & """"
    End If
End Function

Function ProtocolName(p)
    Select Case p
        Case SCARD_PROTOCOL_T0: ProtocolName = "T0"
        Case SCARD_PROTOCOL_T1: ProtocolName = "T1"
        Case Else: ProtocolName = CStr(p)
    End Select
End Function

' Status into two variables, checked: the card is in, powered, its protocol chosen.
Sub CheckStatus(mgr, when)
    On Error Resume Next
    Dim state, protocol
    mgr.Status state, protocol
    Check Err.Number = 0 And state = SCARD_SPECIFIC And protocol = expected, _
        "Status " & when & ": state " & state & ", protocol " & ProtocolName(protocol) & _
        " (expected 6 = SCARD_SPECIFIC, " & ProtocolName(expected) & "); " & Outcome()
    Err.Clear
End Sub

On Error Resume Next

Dim mgr
Set mgr = CreateObject("SCardCOM.SCardManage")
Check Err.Number = 0 And IsObject(mgr), "CreateObject(""SCardCOM.SCardManage""): " & TypeName(mgr) & "; " & Outcome()
If Err.Number <> 0 Then WScript.Quit failures
Err.Clear

mgr.AttachByIFD reader
Check Err.Number = 0, "AttachByIFD """ & reader & """: " & Outcome()
Err.Clear
CheckStatus mgr, "after AttachByIFD"

mgr.SCardLock
Check Err.Number = 0, "SCardLock: " & Outcome()
Err.Clear
CheckStatus mgr, "while locked"
mgr.SCardUnlock SCARD_LEAVE_CARD
Check Err.Number = 0, "SCardUnlock SCARD_LEAVE_CARD: " & Outcome()
Err.Clear

mgr.Reconnect
Check Err.Number = 0, "Reconnect: " & Outcome()
Err.Clear
CheckStatus mgr, "after Reconnect"

' A byte buffer (scardssp.dll's CByteBuffer, by its ProgID for scripts) holding TEXT's characters
' as bytes: scripts write a buffer a byte at a time.
Function Code(text)
    On Error Resume Next
    Dim buffer, i
    Set buffer = CreateObject("SCardCOM.ByteBuffer")
    For i = 1 To Len(text)
        buffer.Write Asc(Mid(text, i, 1)), 1
    Next
    Check Err.Number = 0, "a byte buffer by CreateObject(""SCardCOM.ByteBuffer"") holding """ & text & """: " & Outcome()
    Set Code = buffer
End Function

' The first COUNT bytes of a byte buffer as text, read a byte at a time from its start: each byte
' comes into the variable as a number (Chr of a string would be a type mismatch, so a check fails).
Function BufferText(buffer, count)
    On Error Resume Next
    Dim i, value
    BufferText = ""
    If Not IsObject(buffer) Then Exit Function
    buffer.Seek 0, 0
    For i = 1 To count
        buffer.Read value, 1
        BufferText = BufferText & Chr(value)
    Next
End Function

' A file of the ISO card read whole (lab/src/iso.rs: EF 5001 under DF 5000), or the
' PIN-protected one (EF 5004) once the PIN is verified.
Sub ReadFile(mgr, path, expected)
    On Error Resume Next
    Dim files, handle, count, buffer, text
    Set files = mgr.CreateFileAccess()
    Check Err.Number = 0 And IsObject(files), "CreateFileAccess: " & TypeName(files) & "; " & Outcome()
    Err.Clear
    files.Open SC_TYPE_BY_ID, path, handle
    Check Err.Number = 0, "ISCardFileAccess.Open SC_TYPE_BY_ID, """ & path & """: file " & handle & "; " & Outcome()
    Err.Clear
    count = 256
    files.Read handle, count, 0, buffer
    Check Err.Number = 0 And count = Len(expected), "ISCardFileAccess.Read of up to 256 bytes: " & count & _
        " read (the file has " & Len(expected) & ") into " & TypeName(buffer) & "; " & Outcome()
    Err.Clear
    text = BufferText(buffer, count)
    Check Err.Number = 0 And text = expected, "the bytes read, from the buffer one at a time: """ & text & """; " & Outcome()
    Err.Clear
    files.Close handle
    Check Err.Number = 0, "ISCardFileAccess.Close: " & Outcome()
    Err.Clear
End Sub

ReadFile mgr, "3F00/5000/5001", "scardmanage ISO lab card: EF 5001"

' The card's PIN (reference 1, DF-specific: 0x81) is 1234; a wrong one costs a try.
Dim verify
Set verify = mgr.CreateCHVerification()
Check Err.Number = 0 And IsObject(verify), "CreateCHVerification: " & TypeName(verify) & "; " & Outcome()
Err.Clear
verify.Verify Code("9999"), SC_FL_IHV_LOCAL, 1
Check Err.Number = SCARD_W_WRONG_CHV And Len(Err.Description) > 0, _
    "ISCardVerify.Verify of a wrong PIN: " & Outcome() & " (expected &H8010006B SCARD_W_WRONG_CHV with a description)"
Err.Clear
verify.Verify Code("1234"), SC_FL_IHV_LOCAL, 1
Check Err.Number = 0, "ISCardVerify.Verify of the right PIN: " & Outcome()
Err.Clear
ReadFile mgr, "3F00/5000/5004", "PIN-protected"
Set verify = Nothing

mgr.Detach
Check Err.Number = 0, "Detach: " & Outcome()
Err.Clear
Dim state, protocol
mgr.Status state, protocol
Check Err.Number <> 0, "Status after Detach fails: " & Outcome()
Err.Clear

' The original's second argument, the share mode, given as the type library's callers give it.
mgr.AttachByIFD reader, SCARD_SHARE_SHARED
Check Err.Number = 0, "AttachByIFD """ & reader & """, SCARD_SHARE_SHARED: " & Outcome()
Err.Clear
CheckStatus mgr, "after AttachByIFD with a share mode"
mgr.Detach
Err.Clear

mgr.AttachByIFD "No Such Reader 00 00"
Check Err.Number = SCARD_E_UNKNOWN_READER And Len(Err.Description) > 0, _
    "AttachByIFD of an unknown reader: " & Outcome() & " (expected &H80100009 SCARD_E_UNKNOWN_READER with a description)"
Err.Clear

Set mgr = Nothing
' Last: .ci/test-com looks for this line, since a script stopped by an error it did not expect
' may still exit with 0 under Wine's cscript.
WScript.Echo "manage.vbs: ran to its end, " & failures & " failed"
WScript.Quit failures
