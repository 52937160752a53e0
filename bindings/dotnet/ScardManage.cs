// scardmanage for .NET: the ISCardManage object model over the C ABI through P/Invoke.
//
// Every import is cdecl; only int, uint, byte, IntPtr and UIntPtr cross the boundary (never
// bool or long, whose sizes differ between C and C#). Strings go out as NUL-terminated UTF-8
// (encoded strictly: a lone surrogate is SCM_E_INVALIDARG, as the library gives for UTF-16) or
// UTF-16 bytes built here; names come back decoded with U+FFFD for bytes that are not UTF-8;
// buffers are managed arrays the marshaller pins for the call, so
// nothing native is allocated and nothing is to be freed but the library's objects (the manager,
// the factories' objects, the monitor), each owned by a SafeHandle of its own type that ends it
// with its own _release exactly once.
using System;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace ScardManage
{
    /// <summary>A failed call: the HRESULT (SCARD_* codes included) and the library's text.</summary>
    public class SCardException : Exception
    {
        public SCardException(string operation, int hresult)
            : base(string.Format("{0}: 0x{1:X8} {2}", operation, hresult, NativeMethods.Message(hresult)))
        {
            HResult = hresult;
            Operation = operation;
        }

        /// <summary>The scm_ function that failed.</summary>
        public string Operation { get; private set; }

        /// <summary>After a wrong or blocked card holder code: the tries the card still allows (0
        /// when blocked); null when the card does not say, and for every other failure.</summary>
        public uint? TriesLeft { get; internal set; }
    }

    /// <summary>The result codes and constants of scardmanage.h that managed code tests for.</summary>
    public static class Scm
    {
        public const int S_OK = 0;
        public const int E_POINTER = unchecked((int)0x80004003);
        public const int E_NOT_ATTACHED = unchecked((int)0x8000000E);
        public const int E_HANDLE = unchecked((int)0x80070006);
        public const int E_INVALIDARG = unchecked((int)0x80070057);
        public const int SCARD_E_INSUFFICIENT_BUFFER = unchecked((int)0x80100008);
        public const int SCARD_E_UNKNOWN_READER = unchecked((int)0x80100009);
        public const int SCARD_E_NO_SMARTCARD = unchecked((int)0x8010000C);
        public const int SCARD_E_NOT_TRANSACTED = unchecked((int)0x80100016);
        public const int SCARD_W_RESET_CARD = unchecked((int)0x80100068);
        public const int E_NOTIMPL = unchecked((int)0x80004001);
        public const int SCARD_E_CANCELLED = unchecked((int)0x80100002);
        public const int SCARD_E_TIMEOUT = unchecked((int)0x8010000A);
        public const int SCARD_E_UNSUPPORTED_FEATURE = unchecked((int)0x80100022);
        public const int SCARD_E_FILE_NOT_FOUND = unchecked((int)0x80100024);
        public const int SCARD_E_NO_ACCESS = unchecked((int)0x80100027);
        public const int SCARD_E_WRITE_TOO_MANY = unchecked((int)0x80100028);
        public const int SCARD_W_SECURITY_VIOLATION = unchecked((int)0x8010006A);
        public const int SCARD_W_WRONG_CHV = unchecked((int)0x8010006B);
        public const int SCARD_W_CHV_BLOCKED = unchecked((int)0x8010006C);
        public const int SCARD_W_EOF = unchecked((int)0x8010006D);

        /// <summary>SCM_E_CARD_STATUS(sw): a status word the library has no SCARD_* code for.</summary>
        public static int CardStatus(ushort sw) { return unchecked((int)(0xA0FF0000u | sw)); }

        public const uint ISO_GET_RESPONSE = 1, ISO_FIX_LE = 2, ISO_CHAIN = 4, ISO_ALL = 7;
        public const uint REF_BY_NAME = 0, REF_BY_ID = 1, REF_BY_SHORT_ID = 2;
        public const uint SEEK_FROM_BEGINNING = 0, SEEK_FROM_END = 1, SEEK_RELATIVE = 2;
        public const uint TRIES_UNKNOWN = 0xFFFFFFFF;
        public const uint WAIT_INFINITE = 0xFFFFFFFF;
        public const uint EVENT_READER_ADDED = 1, EVENT_READER_REMOVED = 2, EVENT_CARD_INSERTED = 3, EVENT_CARD_REMOVED = 4;
        public const uint ATTR_ATR_STRING = 0x00090303;
        public const uint FEATURE_VERIFY_PIN_DIRECT = 0x06;

        /// <summary>The interfaces CreateInterface makes (Guid.ToByteArray() is GUID memory order).</summary>
        public static readonly Guid IID_ISCardFileAccess = new Guid("4029DD8A-5902-11D0-B84C-00C04FD424B9");
        public static readonly Guid IID_ISCardVerify = new Guid("4029DD85-5902-11D0-B84C-00C04FD424B9");
        public static readonly Guid IID_ISCardAuth = new Guid("7B063D61-6E40-11D0-B858-00C04FD424B9");

        public const uint LEAVE_CARD = 0, RESET_CARD = 1, UNPOWER_CARD = 2, EJECT_CARD = 3;
        public const uint STATE_ABSENT = 1, STATE_PRESENT = 2, STATE_SPECIFIC = 6;
        public const uint PROTOCOL_T0 = 1, PROTOCOL_T1 = 2;
        public const int MAX_APDU_SIZE = 65548;

        /// <summary>The library's text for any result.</summary>
        public static string ErrorMessage(int hresult) { return NativeMethods.Message(hresult); }

        public static string Version { get { return NativeMethods.Utf8(NativeMethods.scm_version()); } }
    }

    /// <summary>One token of the library; each kind is its own type, released by its own
    /// function, run once.</summary>
    public abstract class ScmHandle : SafeHandle
    {
        protected ScmHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>Takes over a token CreateInterface returned untyped.</summary>
        internal void Adopt(IntPtr token) { SetHandle(token); }
    }

    /// <summary>Owns one scm_manage token; releasing it is scm_release.</summary>
    public sealed class ManagerHandle : ScmHandle
    {
        protected override bool ReleaseHandle() { return NativeMethods.scm_release(handle) >= 0; }
    }

    /// <summary>Owns one scm_file_access token; releasing it is scm_file_access_release.</summary>
    public sealed class FileAccessHandle : ScmHandle
    {
        protected override bool ReleaseHandle() { return NativeMethods.scm_file_access_release(handle) >= 0; }
    }

    /// <summary>Owns one scm_chv token; releasing it is scm_chv_release.</summary>
    public sealed class ChvHandle : ScmHandle
    {
        protected override bool ReleaseHandle() { return NativeMethods.scm_chv_release(handle) >= 0; }
    }

    /// <summary>Owns one scm_auth token; releasing it is scm_auth_release.</summary>
    public sealed class AuthHandle : ScmHandle
    {
        protected override bool ReleaseHandle() { return NativeMethods.scm_auth_release(handle) >= 0; }
    }

    /// <summary>Owns one scm_monitor token; releasing it is scm_monitor_release.</summary>
    public sealed class MonitorHandle : ScmHandle
    {
        protected override bool ReleaseHandle() { return NativeMethods.scm_monitor_release(handle) >= 0; }
    }

    /// <summary>A call under the buffer rules: a null buffer asks for the size.</summary>
    internal delegate int SizedCall(byte[] buffer, ref UIntPtr length);

    /// <summary>A call that makes a library object.</summary>
    internal delegate int Factory<T>(out T made);

    /// <summary>What owns one of the library's objects: its SafeHandle.</summary>
    public abstract class HandleOwner<THandle> where THandle : ScmHandle
    {
        protected readonly THandle handle;

        internal HandleOwner(THandle handle) { this.handle = handle; }

        /// <summary>The token, for code that needs the C functions this class does not wrap.</summary>
        public THandle Handle { get { return handle; } }
    }

    internal static class NativeMethods
    {
        // "scardmanage": libscardmanage.so on Linux (found through LD_LIBRARY_PATH or the
        // loader's paths), libscardmanage.dylib on macOS, scardmanage.dll on Windows.
        private const string Lib = "scardmanage";
        private const CallingConvention Cdecl = CallingConvention.Cdecl;

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_create(out ManagerHandle manager);

        // Takes the raw token: SafeHandle.ReleaseHandle calls it with the handle it owns.
        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_release(IntPtr manager);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_attach_by_handle(ManagerHandle m, UIntPtr hicc);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_attach_by_ifd(ManagerHandle m, byte[] readerUtf8);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_attach_by_ifd_w(ManagerHandle m, ushort[] readerUtf16);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_attach_by_ifd_ex(ManagerHandle m, byte[] readerUtf8, uint shareMode, uint protocols);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_reconnect(ManagerHandle m);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_detach_ex(ManagerHandle m, uint disposition);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_lock(ManagerHandle m);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_unlock(ManagerHandle m, uint disposition);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_status(ManagerHandle m, out uint state, out uint protocol);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_transmit(ManagerHandle m, byte[] command, UIntPtr commandLen,
                                                byte[] response, ref UIntPtr responseLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_get_atr(ManagerHandle m, byte[] atr, ref UIntPtr atrLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_get_reader_name(ManagerHandle m, byte[] name, ref UIntPtr nameLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_get_handle(ManagerHandle m, out UIntPtr hicc);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_list_readers(byte[] readers, ref UIntPtr readersLen);

        // Both return static strings: read, never freed (so not marshalled as string, which
        // would free them).
        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern IntPtr scm_error_message(int hresult);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern IntPtr scm_version();

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_transmit_ex(ManagerHandle m, uint flags, byte[] command, UIntPtr commandLen,
                                                   byte[] response, ref UIntPtr responseLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_wait_for_change(ManagerHandle m, uint timeoutMs, out uint state);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_cancel(ManagerHandle m);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_get_attrib(ManagerHandle m, uint attribute, byte[] value, ref UIntPtr valueLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_set_attrib(ManagerHandle m, uint attribute, byte[] value, UIntPtr valueLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_control(ManagerHandle m, uint code, byte[] input, UIntPtr inputLen,
                                               byte[] output, ref UIntPtr outputLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_get_feature(ManagerHandle m, uint tag, out uint controlCode);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_create_file_access(ManagerHandle m, out FileAccessHandle made);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_create_chv_verification(ManagerHandle m, out ChvHandle made);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_create_card_auth(ManagerHandle m, out AuthHandle made);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_create_interface(ManagerHandle m, byte[] iid, byte[] nameUtf8, out IntPtr made);

        // The releases take the raw token: each SafeHandle's ReleaseHandle calls its own.
        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_access_release(IntPtr f);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_release(IntPtr v);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_auth_release(IntPtr a);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_monitor_release(IntPtr mon);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_change_dir(FileAccessHandle f, uint refType, byte[] name);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_get_current_dir(FileAccessHandle f, byte[] path, ref UIntPtr pathLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_open(FileAccessHandle f, uint refType, byte[] name, out uint file);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_read(FileAccessHandle f, uint file, byte[] buffer, ref UIntPtr len, uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_write(FileAccessHandle f, uint file, byte[] data, UIntPtr len, uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_seek(FileAccessHandle f, uint file, uint origin, long offset, out ulong position);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_close(FileAccessHandle f, uint file);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_get_properties(FileAccessHandle f, uint refType, byte[] name, uint flags,
                                                           byte[] fcp, ref UIntPtr fcpLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_create(FileAccessHandle f, uint refType, byte[] name, byte[] fcp, UIntPtr fcpLen,
                                                   uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_delete(FileAccessHandle f, uint refType, byte[] name, uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_invalidate(FileAccessHandle f, uint refType, byte[] name, uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_file_rehabilitate(FileAccessHandle f, uint refType, byte[] name, uint flags);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_verify(ChvHandle v, uint reference, byte[] code, UIntPtr len, uint flags,
                                                  ref uint triesLeft);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_change_code(ChvHandle v, uint reference, byte[] oldCode, UIntPtr oldLen,
                                                       byte[] newCode, UIntPtr newLen, uint flags, ref uint triesLeft);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_unblock(ChvHandle v, uint reference, byte[] unblockCode, UIntPtr unblockLen,
                                                   byte[] newCode, UIntPtr newLen, uint flags, ref uint triesLeft);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_reset_security_state(ChvHandle v);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_chv_get_tries_left(ChvHandle v, uint reference, out uint triesLeft);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_auth_get_challenge(AuthHandle a, byte[] challenge, ref UIntPtr len);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_auth_icc_auth(AuthHandle a, uint algorithm, uint key, byte[] data, UIntPtr len,
                                                     byte[] response, ref UIntPtr responseLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_auth_app_auth(AuthHandle a, uint algorithm, uint key, byte[] data, UIntPtr len);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_auth_user_auth(AuthHandle a, uint reference, byte[] code, UIntPtr len, ref uint triesLeft);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_monitor_create(out MonitorHandle mon);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_monitor_next(MonitorHandle mon, uint timeoutMs, out uint kind, byte[] reader,
                                                    ref UIntPtr readerLen);

        [DllImport(Lib, CallingConvention = Cdecl)]
        internal static extern int scm_monitor_cancel(MonitorHandle mon);

        internal static string Message(int hresult) { return Utf8(scm_error_message(hresult)); }

        internal static UIntPtr Len(byte[] bytes) { return new UIntPtr((uint)bytes.Length); }

        /// <summary>The object a factory made, or SCardException.</summary>
        internal static T Make<T>(string operation, Factory<T> factory)
        {
            T made;
            Check(operation, factory(out made));
            return made;
        }

        /// <summary>An answer into a buffer of `capacity` bytes, cut to what was written.</summary>
        internal static byte[] Answer(string operation, int capacity, SizedCall call)
        {
            byte[] buffer = new byte[capacity];
            UIntPtr len = new UIntPtr((uint)capacity);
            Check(operation, call(buffer, ref len));
            Array.Resize(ref buffer, (int)len.ToUInt32());
            return buffer;
        }

        internal static string Utf8(IntPtr text)
        {
            int len = 0;
            while (Marshal.ReadByte(text, len) != 0)
                len++;
            byte[] bytes = new byte[len];
            Marshal.Copy(text, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        // Throws on a lone surrogate instead of sending U+FFFD, which is a valid name.
        private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, true);

        /// <summary>A NUL-terminated UTF-8 copy; a NUL inside would silently cut the name. A
        /// lone surrogate is SCardException(E_INVALIDARG), the library's answer to it in UTF-16.</summary>
        internal static byte[] Utf8z(string operation, string s)
        {
            if (s == null)
                throw new ArgumentNullException("name");
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("a name given to the library cannot contain NUL", "name");
            try
            {
                byte[] bytes = new byte[StrictUtf8.GetByteCount(s) + 1];
                StrictUtf8.GetBytes(s, 0, s.Length, bytes, 0);
                return bytes;
            }
            catch (EncoderFallbackException)
            {
                throw new SCardException(operation, Scm.E_INVALIDARG);
            }
        }

        /// <summary>The buffer rules: asks for the size, then fetches; asks again while the
        /// size grew in between (a reader plugged in), as the library and the Python binding do.
        /// Returns the bytes written.</summary>
        internal static byte[] Fetch(string operation, SizedCall call)
        {
            UIntPtr len = UIntPtr.Zero;
            Check(operation, call(null, ref len));
            while (true)
            {
                byte[] buffer = new byte[(int)len.ToUInt32()];
                int hresult = call(buffer, ref len);
                if (hresult == Scm.SCARD_E_INSUFFICIENT_BUFFER)
                    continue;
                Check(operation, hresult);
                Array.Resize(ref buffer, (int)len.ToUInt32());
                return buffer;
            }
        }

        internal static ushort[] Utf16z(string s)
        {
            if (s == null)
                throw new ArgumentNullException("reader");
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("a reader name cannot contain NUL", "reader");
            ushort[] units = new ushort[s.Length + 1];
            for (int i = 0; i < s.Length; i++)
                units[i] = s[i];
            return units;
        }

        internal static void Check(string operation, int hresult)
        {
            if (hresult < 0)
                throw new SCardException(operation, hresult);
        }
    }

    /// <summary>The ISCardManage object: one manager, released by Dispose (or the finalizer).
    /// Methods throw SCardException on failure; after Dispose they throw ObjectDisposedException.</summary>
    public sealed class SCardManage : HandleOwner<ManagerHandle>, IDisposable
    {
        public SCardManage() : base(NativeMethods.Make<ManagerHandle>("scm_create", NativeMethods.scm_create)) { }

        public void AttachByHandle(UIntPtr hICC)
        {
            NativeMethods.Check("scm_attach_by_handle", NativeMethods.scm_attach_by_handle(handle, hICC));
        }

        /// <summary>Attaches by reader name, passed to the library as UTF-8.</summary>
        public void AttachByIFD(string reader)
        {
            NativeMethods.Check("scm_attach_by_ifd", NativeMethods.scm_attach_by_ifd(handle, NativeMethods.Utf8z("scm_attach_by_ifd", reader)));
        }

        /// <summary>Attaches by reader name, passed as UTF-16 (a BSTR's characters).</summary>
        public void AttachByIFDW(string reader)
        {
            NativeMethods.Check("scm_attach_by_ifd_w", NativeMethods.scm_attach_by_ifd_w(handle, NativeMethods.Utf16z(reader)));
        }

        public void AttachByIFD(string reader, uint shareMode, uint protocols)
        {
            NativeMethods.Check("scm_attach_by_ifd_ex",
                                NativeMethods.scm_attach_by_ifd_ex(handle, NativeMethods.Utf8z("scm_attach_by_ifd_ex", reader),
                                                                   shareMode, protocols));
        }

        public void Reconnect() { NativeMethods.Check("scm_reconnect", NativeMethods.scm_reconnect(handle)); }

        public void Detach() { Detach(Scm.LEAVE_CARD); }

        public void Detach(uint disposition)
        {
            NativeMethods.Check("scm_detach_ex", NativeMethods.scm_detach_ex(handle, disposition));
        }

        public void SCardLock() { NativeMethods.Check("scm_lock", NativeMethods.scm_lock(handle)); }

        public void SCardUnlock(uint disposition)
        {
            NativeMethods.Check("scm_unlock", NativeMethods.scm_unlock(handle, disposition));
        }

        public void Status(out uint state, out uint protocol)
        {
            NativeMethods.Check("scm_status", NativeMethods.scm_status(handle, out state, out protocol));
        }

        /// <summary>Sends one APDU; returns the answer, status word included.</summary>
        public byte[] Transmit(byte[] command)
        {
            if (command == null)
                throw new ArgumentNullException("command");
            return NativeMethods.Answer("scm_transmit", Scm.MAX_APDU_SIZE, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_transmit(handle, command, NativeMethods.Len(command), buffer, ref len));
        }

        /// <summary>Transmit with the library's ISO 7816 help (scm_transmit_ex): Scm.ISO_GET_RESPONSE
        /// (61xx), ISO_FIX_LE (6Cxx), ISO_CHAIN (command chaining), ISO_ALL.</summary>
        public byte[] TransmitEx(byte[] command, uint flags)
        {
            if (command == null)
                throw new ArgumentNullException("command");
            return NativeMethods.Answer("scm_transmit_ex", Scm.MAX_APDU_SIZE, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_transmit_ex(handle, flags, command, NativeMethods.Len(command), buffer, ref len));
        }

        public byte[] Atr()
        {
            return NativeMethods.Answer("scm_get_atr", 64, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_get_atr(handle, buffer, ref len));
        }

        /// <summary>The attached reader's name; bytes that are not UTF-8 become U+FFFD.</summary>
        public string ReaderName()
        {
            byte[] name = NativeMethods.Fetch("scm_get_reader_name",
                                              (byte[] buffer, ref UIntPtr len) => NativeMethods.scm_get_reader_name(handle, buffer, ref len));
            return Encoding.UTF8.GetString(name, 0, name.Length - 1);
        }

        /// <summary>The card handle in use (ISCard get_CardHandle); it stays the manager's.</summary>
        public UIntPtr CardHandle()
        {
            UIntPtr hicc;
            NativeMethods.Check("scm_get_handle", NativeMethods.scm_get_handle(handle, out hicc));
            return hicc;
        }

        /// <summary>The names of the readers PC/SC knows; bytes that are not UTF-8 become U+FFFD.</summary>
        public static string[] ListReaders()
        {
            byte[] multi = NativeMethods.Fetch("scm_list_readers", NativeMethods.scm_list_readers);
            return Encoding.UTF8.GetString(multi).Split(new[] { '\0' }, StringSplitOptions.RemoveEmptyEntries);
        }

        /// <summary>Blocks until the attached reader's card changes since the manager last looked,
        /// or timeoutMs passes (Scm.WAIT_INFINITE: no end); false when the time passed, else true
        /// with the COM state now. Cancel() from another thread ends it with
        /// SCardException(SCARD_E_CANCELLED), and so does Dispose().</summary>
        public bool WaitForChange(uint timeoutMs, out uint state)
        {
            int hresult = NativeMethods.scm_wait_for_change(handle, timeoutMs, out state);
            if (hresult == Scm.SCARD_E_TIMEOUT)
                return false;
            NativeMethods.Check("scm_wait_for_change", hresult);
            return true;
        }

        /// <summary>Ends a WaitForChange in progress on this manager, from any thread.</summary>
        public void Cancel() { NativeMethods.Check("scm_cancel", NativeMethods.scm_cancel(handle)); }

        /// <summary>A reader attribute (Scm.ATTR_*); text attributes are UTF-8 with their NUL.</summary>
        public byte[] GetAttrib(uint attribute)
        {
            return NativeMethods.Fetch("scm_get_attrib", (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_get_attrib(handle, attribute, buffer, ref len));
        }

        public void SetAttrib(uint attribute, byte[] value)
        {
            NativeMethods.Check("scm_set_attrib", NativeMethods.scm_set_attrib(handle, attribute, value, NativeMethods.Len(value)));
        }

        /// <summary>SCardControl; a code up to 0xFFFF is the portable SCARD_CTL_CODE(code).</summary>
        public byte[] Control(uint code, byte[] input)
        {
            return NativeMethods.Answer("scm_control", Scm.MAX_APDU_SIZE, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_control(handle, code, input, NativeMethods.Len(input), buffer, ref len));
        }

        /// <summary>The native control code of a PC/SC part 10 feature (Scm.FEATURE_*), for Control.</summary>
        public uint GetFeature(uint tag)
        {
            uint code;
            NativeMethods.Check("scm_get_feature", NativeMethods.scm_get_feature(handle, tag, out code));
            return code;
        }

        /// <summary>COM CreateFileAccess: ISO 7816-4 files of the attached card.</summary>
        public FileAccess CreateFileAccess()
        {
            return new FileAccess(this, NativeMethods.Make("scm_create_file_access", (out FileAccessHandle made) =>
                NativeMethods.scm_create_file_access(handle, out made)));
        }

        /// <summary>COM CreateCHVerification: card holder verification.</summary>
        public ChvVerification CreateCHVerification()
        {
            return new ChvVerification(this, NativeMethods.Make("scm_create_chv_verification", (out ChvHandle made) =>
                NativeMethods.scm_create_chv_verification(handle, out made)));
        }

        /// <summary>COM CreateCardAuth: card authentication.</summary>
        public CardAuth CreateCardAuth()
        {
            return new CardAuth(this, NativeMethods.Make("scm_create_card_auth", (out AuthHandle made) =>
                NativeMethods.scm_create_card_auth(handle, out made)));
        }

        /// <summary>COM CreateInterface by IID (Scm.IID_ISCardFileAccess, IID_ISCardVerify,
        /// IID_ISCardAuth): the FileAccess, ChvVerification or CardAuth. Any other IID is
        /// SCardException(E_NOTIMPL).</summary>
        public IDisposable CreateInterface(Guid iid) { return CreateInterface(iid.ToByteArray(), null, iid.ToString()); }

        /// <summary>COM CreateInterface by name ("FileAccess", "CHVerification", "CardAuth"); any
        /// other, such as "CryptoProvider", is SCardException(E_NOTIMPL).</summary>
        public IDisposable CreateInterface(string name)
        {
            return CreateInterface(null, NativeMethods.Utf8z("scm_create_interface", name), name);
        }

        private IDisposable CreateInterface(byte[] iid, byte[] name, string key)
        {
            IntPtr made = NativeMethods.Make("scm_create_interface", (out IntPtr token) =>
                NativeMethods.scm_create_interface(handle, iid, name, out token));
            if (key == "FileAccess" || key == Scm.IID_ISCardFileAccess.ToString())
                return new FileAccess(this, Adopt(new FileAccessHandle(), made));
            if (key == "CHVerification" || key == Scm.IID_ISCardVerify.ToString())
                return new ChvVerification(this, Adopt(new ChvHandle(), made));
            return new CardAuth(this, Adopt(new AuthHandle(), made));
        }

        private static T Adopt<T>(T owner, IntPtr token) where T : ScmHandle
        {
            owner.Adopt(token);
            return owner;
        }

        /// <summary>Releases the manager; a WaitForChange in progress in another thread is ended first
        /// (its SafeHandle would otherwise keep the manager until the wait returned).</summary>
        public void Dispose()
        {
            if (!handle.IsClosed)
                NativeMethods.scm_cancel(handle);
            handle.Dispose();
        }
    }

    /// <summary>An object a factory made: its SafeHandle, and the manager it keeps alive (it follows
    /// the manager through Reconnect, fails with E_NOT_ATTACHED while the manager is detached and
    /// E_HANDLE once it is released). Dispose ends it; afterwards calls throw ObjectDisposedException.</summary>
    public abstract class CardObject<THandle> : HandleOwner<THandle>, IDisposable where THandle : ScmHandle
    {
        private readonly SCardManage manager;

        internal CardObject(SCardManage manager, THandle handle) : base(handle) { this.manager = manager; }

        /// <summary>The manager the object works through.</summary>
        public SCardManage Manager { get { return manager; } }

        public void Dispose() { handle.Dispose(); }
    }

    /// <summary>ISCardFileAccess over ISO 7816-4. A file is designated by a reference type
    /// (Scm.REF_BY_NAME: a DF name in hex; REF_BY_ID: a file identifier or a path of them in hex,
    /// "3F00..." absolute, else relative to the current directory; REF_BY_SHORT_ID: "1" to "30").</summary>
    public sealed class FileAccess : CardObject<FileAccessHandle>
    {
        internal FileAccess(SCardManage manager, FileAccessHandle handle) : base(manager, handle) { }

        private static byte[] Name(string name) { return NativeMethods.Utf8z("scm_file", name); }

        public void ChangeDir(uint refType, string name)
        {
            NativeMethods.Check("scm_file_change_dir", NativeMethods.scm_file_change_dir(handle, refType, Name(name)));
        }

        /// <summary>The current directory's path as the library tracks it.</summary>
        public string GetCurrentDir()
        {
            byte[] path = NativeMethods.Fetch("scm_file_get_current_dir", (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_file_get_current_dir(handle, buffer, ref len));
            return Encoding.UTF8.GetString(path, 0, path.Length - 1);
        }

        /// <summary>Opens a file (SELECT); returns its number for Read, Write, Seek and Close.</summary>
        public uint Open(uint refType, string name)
        {
            uint file;
            NativeMethods.Check("scm_file_open", NativeMethods.scm_file_open(handle, refType, Name(name), out file));
            return file;
        }

        /// <summary>Up to count bytes from the file's position (fewer where the file ends; none at
        /// its end).</summary>
        public byte[] Read(uint file, int count, uint flags = 0)
        {
            byte[] buffer = new byte[count];
            UIntPtr len = new UIntPtr((uint)count);
            int hresult = NativeMethods.scm_file_read(handle, file, buffer, ref len, flags);
            if (hresult == Scm.SCARD_W_EOF)
                return new byte[0];
            NativeMethods.Check("scm_file_read", hresult);
            Array.Resize(ref buffer, (int)len.ToUInt32());
            return buffer;
        }

        public void Write(uint file, byte[] data, uint flags = 0)
        {
            NativeMethods.Check("scm_file_write", NativeMethods.scm_file_write(handle, file, data, NativeMethods.Len(data), flags));
        }

        /// <summary>Moves the position (Scm.SEEK_FROM_BEGINNING, SEEK_FROM_END, SEEK_RELATIVE); returns it.</summary>
        public ulong Seek(uint file, uint origin, long offset)
        {
            ulong position;
            NativeMethods.Check("scm_file_seek", NativeMethods.scm_file_seek(handle, file, origin, offset, out position));
            return position;
        }

        public void Close(uint file) { NativeMethods.Check("scm_file_close", NativeMethods.scm_file_close(handle, file)); }

        /// <summary>The file's control parameters as the card returns them (tag 62 first).</summary>
        public byte[] GetProperties(uint refType, string name, uint flags = 0)
        {
            byte[] encoded = Name(name);
            return NativeMethods.Fetch("scm_file_get_properties", (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_file_get_properties(handle, refType, encoded, flags, buffer, ref len));
        }

        /// <summary>CREATE FILE with the FCP given (tag 62 first).</summary>
        public void Create(uint refType, string name, byte[] fcp, uint flags = 0)
        {
            NativeMethods.Check("scm_file_create",
                                NativeMethods.scm_file_create(handle, refType, Name(name), fcp, NativeMethods.Len(fcp), flags));
        }

        public void Delete(uint refType, string name, uint flags = 0)
        {
            NativeMethods.Check("scm_file_delete", NativeMethods.scm_file_delete(handle, refType, Name(name), flags));
        }

        /// <summary>DEACTIVATE FILE.</summary>
        public void Invalidate(uint refType, string name, uint flags = 0)
        {
            NativeMethods.Check("scm_file_invalidate", NativeMethods.scm_file_invalidate(handle, refType, Name(name), flags));
        }

        /// <summary>ACTIVATE FILE.</summary>
        public void Rehabilitate(uint refType, string name, uint flags = 0)
        {
            NativeMethods.Check("scm_file_rehabilitate", NativeMethods.scm_file_rehabilitate(handle, refType, Name(name), flags));
        }
    }

    /// <summary>ISCardVerify: card holder verification. Codes are byte arrays passed to the
    /// library without a copy (the marshaller pins them): clear them with Array.Clear when done.
    /// A wrong code throws SCardException(SCARD_W_WRONG_CHV) with TriesLeft; a blocked one
    /// SCardException(SCARD_W_CHV_BLOCKED) with TriesLeft 0.</summary>
    public sealed class ChvVerification : CardObject<ChvHandle>
    {
        internal ChvVerification(SCardManage manager, ChvHandle handle) : base(manager, handle) { }

        /// <summary>A call that takes codes and reports the tries left: the library writes them only
        /// when the card refused the code (0 when blocked, TRIES_UNKNOWN when the card does not say).</summary>
        internal delegate int CodeCall(ref uint triesLeft);

        internal static void WithTries(string operation, CodeCall call)
        {
            uint tries = Scm.TRIES_UNKNOWN;
            int hresult = call(ref tries);
            if (hresult >= 0)
                return;
            SCardException failure = new SCardException(operation, hresult);
            if ((hresult == Scm.SCARD_W_WRONG_CHV || hresult == Scm.SCARD_W_CHV_BLOCKED) && tries != Scm.TRIES_UNKNOWN)
                failure.TriesLeft = tries;
            throw failure;
        }

        public void Verify(uint reference, byte[] code, uint flags = 0)
        {
            WithTries("scm_chv_verify", (ref uint tries) =>
                NativeMethods.scm_chv_verify(handle, reference, code, NativeMethods.Len(code), flags, ref tries));
        }

        /// <summary>CHANGE REFERENCE DATA; an empty oldCode changes a code verified before.</summary>
        public void ChangeCode(uint reference, byte[] oldCode, byte[] newCode, uint flags = 0)
        {
            WithTries("scm_chv_change_code", (ref uint tries) =>
                NativeMethods.scm_chv_change_code(handle, reference, oldCode, NativeMethods.Len(oldCode), newCode,
                                                  NativeMethods.Len(newCode), flags, ref tries));
        }

        /// <summary>RESET RETRY COUNTER with the unblocking code (the PUK) and a new code (empty:
        /// the counter reset only).</summary>
        public void Unblock(uint reference, byte[] unblockCode, byte[] newCode, uint flags = 0)
        {
            WithTries("scm_chv_unblock", (ref uint tries) =>
                NativeMethods.scm_chv_unblock(handle, reference, unblockCode, NativeMethods.Len(unblockCode), newCode,
                                              NativeMethods.Len(newCode), flags, ref tries));
        }

        /// <summary>Forgets every code verified.</summary>
        public void ResetSecurityState()
        {
            NativeMethods.Check("scm_chv_reset_security_state", NativeMethods.scm_chv_reset_security_state(handle));
        }

        /// <summary>The tries the code has left (0: blocked), or null when the card does not say.</summary>
        public uint? GetTriesLeft(uint reference)
        {
            uint tries;
            int hresult = NativeMethods.scm_chv_get_tries_left(handle, reference, out tries);
            if (hresult == Scm.SCARD_W_CHV_BLOCKED)
                return 0;
            NativeMethods.Check("scm_chv_get_tries_left", hresult);
            return tries == Scm.TRIES_UNKNOWN ? (uint?)null : tries;
        }
    }

    /// <summary>ISCardAuth: GET CHALLENGE, INTERNAL AUTHENTICATE (the card proves a key), EXTERNAL
    /// AUTHENTICATE (this side proves one); algorithm and key are the card's reference numbers.</summary>
    public sealed class CardAuth : CardObject<AuthHandle>
    {
        internal CardAuth(SCardManage manager, AuthHandle handle) : base(manager, handle) { }

        public byte[] GetChallenge(int count)
        {
            return NativeMethods.Answer("scm_auth_get_challenge", count, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_auth_get_challenge(handle, buffer, ref len));
        }

        public byte[] InternalAuthenticate(uint algorithm, uint key, byte[] data)
        {
            return NativeMethods.Answer("scm_auth_icc_auth", Scm.MAX_APDU_SIZE, (byte[] buffer, ref UIntPtr len) =>
                NativeMethods.scm_auth_icc_auth(handle, algorithm, key, data, NativeMethods.Len(data), buffer, ref len));
        }

        /// <summary>A wrong answer is SCardException(SCARD_W_SECURITY_VIOLATION).</summary>
        public void ExternalAuthenticate(uint algorithm, uint key, byte[] data)
        {
            NativeMethods.Check("scm_auth_app_auth", NativeMethods.scm_auth_app_auth(handle, algorithm, key, data, NativeMethods.Len(data)));
        }

        /// <summary>COM UserAuth: VERIFY with the user's code, as ChvVerification.Verify.</summary>
        public void UserAuthenticate(uint reference, byte[] code)
        {
            ChvVerification.WithTries("scm_auth_user_auth", (ref uint tries) =>
                NativeMethods.scm_auth_user_auth(handle, reference, code, NativeMethods.Len(code), ref tries));
        }
    }

    /// <summary>A monitor's event: Kind is Scm.EVENT_*, Reader the reader's name.</summary>
    public sealed class MonitorEventArgs : EventArgs
    {
        public MonitorEventArgs(uint kind, string reader)
        {
            Kind = kind;
            Reader = reader;
        }

        public uint Kind { get; private set; }
        public string Reader { get; private set; }
    }

    /// <summary>What ended a monitor's thread.</summary>
    public sealed class MonitorErrorEventArgs : EventArgs
    {
        public MonitorErrorEventArgs(Exception error) { Error = error; }

        public Exception Error { get; private set; }
    }

    /// <summary>Every reader of the system: ReaderAdded, ReaderRemoved, CardInserted and CardRemoved,
    /// the first events reporting what is already there; a restart of the PC/SC service comes as its
    /// readers removed and added again. Next() polls; Start() raises the events from a background
    /// thread until Stop(). That thread never dies silently: an exception from the library or from
    /// an event handler is raised as the Error event on it; when the Error handlers return, the
    /// thread goes on after a pause of ErrorPauseMs (the library's monitor stays usable after an
    /// error), unless the error is E_HANDLE (the monitor released under it). With no Error
    /// handler, or one that throws, the thread ends and Stop() (or Dispose()) throws that
    /// exception.</summary>
    public sealed class Monitor : HandleOwner<MonitorHandle>, IDisposable
    {
        // PC/SC's reader names are far shorter; a longer one is fetched again at its size.
        private const int ReaderCapacity = 512;

        /// <summary>How long the thread rests after an error the Error handlers let it go on from,
        /// so that an error that comes back at once does not spin.</summary>
        public const int ErrorPauseMs = 100;

        private Thread thread;
        private volatile bool stopping;
        private ExceptionDispatchInfo failure;

        public event EventHandler<MonitorEventArgs> ReaderAdded;
        public event EventHandler<MonitorEventArgs> ReaderRemoved;
        public event EventHandler<MonitorEventArgs> CardInserted;
        public event EventHandler<MonitorEventArgs> CardRemoved;
        public event EventHandler<MonitorErrorEventArgs> Error;

        public Monitor() : base(NativeMethods.Make<MonitorHandle>("scm_monitor_create", NativeMethods.scm_monitor_create)) { }

        /// <summary>The next event, waiting up to timeoutMs (Scm.WAIT_INFINITE: no end); null when the
        /// time passed. Cancel() from another thread ends it: SCardException(SCARD_E_CANCELLED).</summary>
        public MonitorEventArgs Next(uint timeoutMs)
        {
            uint kind;
            byte[] reader = new byte[ReaderCapacity];
            UIntPtr len = new UIntPtr((uint)reader.Length);
            int hresult = NativeMethods.scm_monitor_next(handle, timeoutMs, out kind, reader, ref len);
            while (hresult == Scm.SCARD_E_INSUFFICIENT_BUFFER)
            {
                reader = new byte[(int)len.ToUInt32()];
                hresult = NativeMethods.scm_monitor_next(handle, timeoutMs, out kind, reader, ref len);
            }
            if (hresult == Scm.SCARD_E_TIMEOUT)
                return null;
            NativeMethods.Check("scm_monitor_next", hresult);
            return new MonitorEventArgs(kind, Encoding.UTF8.GetString(reader, 0, (int)len.ToUInt32() - 1));
        }

        /// <summary>Ends a Next() in progress, from any thread.</summary>
        public void Cancel() { NativeMethods.Check("scm_monitor_cancel", NativeMethods.scm_monitor_cancel(handle)); }

        /// <summary>Raises the events from a background thread until Stop(), or until the process
        /// ends (its end cancels the wait).</summary>
        public void Start()
        {
            if (thread != null)
                throw new InvalidOperationException("the monitor's thread was started already");
            stopping = false;
            thread = new Thread(Run) { IsBackground = true, Name = "ScardManage.Monitor" };
            // A background thread waiting in native code keeps Mono from ending the process (it
            // hung there): a program that ends without Stop() has the wait ended as Stop() would.
            AppDomain.CurrentDomain.ProcessExit += EndAtProcessExit;
            thread.Start();
        }

        private void EndAtProcessExit(object sender, EventArgs e) { End(); }

        private void Run()
        {
            while (!stopping)
            {
                try
                {
                    Raise(Next(Scm.WAIT_INFINITE));
                }
                catch (SCardException cancelled) when (cancelled.HResult == Scm.SCARD_E_CANCELLED)
                {
                    // Stop()'s, seen at the loop's test; or the program's own Cancel(): one wait ends.
                }
                catch (Exception e)
                {
                    if (!Report(e))
                        return;
                    Thread.Sleep(ErrorPauseMs);
                }
            }
        }

        /// <summary>Raises the Error event; whether the thread goes on.</summary>
        private bool Report(Exception e)
        {
            EventHandler<MonitorErrorEventArgs> error = Error;
            try
            {
                if (error != null)
                    error(this, new MonitorErrorEventArgs(e));
            }
            catch (Exception unhandled)
            {
                e = unhandled;
                error = null;
            }
            if (error == null)
            {
                failure = ExceptionDispatchInfo.Capture(e);
                return false;
            }
            SCardException failed = e as SCardException;
            return failed == null || failed.HResult != Scm.E_HANDLE;
        }

        private void Raise(MonitorEventArgs e)
        {
            EventHandler<MonitorEventArgs> handler =
                e.Kind == Scm.EVENT_READER_ADDED ? ReaderAdded :
                e.Kind == Scm.EVENT_READER_REMOVED ? ReaderRemoved :
                e.Kind == Scm.EVENT_CARD_INSERTED ? CardInserted :
                e.Kind == Scm.EVENT_CARD_REMOVED ? CardRemoved : null;
            if (handler != null)
                handler(this, e);
        }

        /// <summary>Ends the thread and waits for it; throws what ended it first, if no Error handler
        /// took it. From a handler (the monitor's own thread) it only asks the thread to end.</summary>
        public void Stop()
        {
            if (!End())
                return;
            thread = null;
            ExceptionDispatchInfo unhandled = failure;
            failure = null;
            if (unhandled != null)
                unhandled.Throw();
        }

        /// <summary>Asks the thread to end and, unless this is that thread, waits for it (then
        /// true).</summary>
        private bool End()
        {
            stopping = true;
            Thread running = thread;
            if (running == null || running == Thread.CurrentThread)
                return false;
            // A cancel that comes before the thread is in its wait ends nothing: sent again until
            // the thread has seen the flag.
            while (running.IsAlive)
            {
                NativeMethods.scm_monitor_cancel(handle);
                running.Join(50);
            }
            AppDomain.CurrentDomain.ProcessExit -= EndAtProcessExit;
            return true;
        }

        /// <summary>Stop(), then releases the monitor.</summary>
        public void Dispose()
        {
            try
            {
                if (!handle.IsClosed)
                    Stop();
            }
            finally
            {
                handle.Dispose();
            }
        }
    }
}
