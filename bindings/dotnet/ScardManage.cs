// scardmanage for .NET: the ISCardManage object model over the C ABI through P/Invoke.
//
// Every import is cdecl; only int, uint, byte, IntPtr and UIntPtr cross the boundary (never
// bool or long, whose sizes differ between C and C#). Strings go out as NUL-terminated UTF-8
// (encoded strictly: a lone surrogate is SCM_E_INVALIDARG, as the library gives for UTF-16) or
// UTF-16 bytes built here; names come back decoded with U+FFFD for bytes that are not UTF-8;
// buffers are managed arrays the marshaller pins for the call, so
// nothing native is allocated and nothing is to be freed but the manager, which the SafeHandle
// releases exactly once.
using System;
using System.Runtime.InteropServices;
using System.Text;

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

        public const uint LEAVE_CARD = 0, RESET_CARD = 1, UNPOWER_CARD = 2, EJECT_CARD = 3;
        public const uint STATE_ABSENT = 1, STATE_PRESENT = 2, STATE_SPECIFIC = 6;
        public const uint PROTOCOL_T0 = 1, PROTOCOL_T1 = 2;
        public const int MAX_APDU_SIZE = 65548;

        /// <summary>The library's text for any result.</summary>
        public static string ErrorMessage(int hresult) { return NativeMethods.Message(hresult); }

        public static string Version { get { return NativeMethods.Utf8(NativeMethods.scm_version()); } }
    }

    /// <summary>Owns one scm_manage token; releasing it is scm_release, run once.</summary>
    public sealed class ManagerHandle : SafeHandle
    {
        public ManagerHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            return NativeMethods.scm_release(handle) >= 0;
        }
    }

    /// <summary>A call under the buffer rules: a null buffer asks for the size.</summary>
    internal delegate int SizedCall(byte[] buffer, ref UIntPtr length);

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

        internal static string Message(int hresult) { return Utf8(scm_error_message(hresult)); }

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
                throw new ArgumentNullException("reader");
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("a reader name cannot contain NUL", "reader");
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
    public sealed class SCardManage : IDisposable
    {
        private readonly ManagerHandle handle;

        public SCardManage()
        {
            ManagerHandle created;
            NativeMethods.Check("scm_create", NativeMethods.scm_create(out created));
            handle = created;
        }

        /// <summary>The token, for code that needs the C functions this class does not wrap.</summary>
        public ManagerHandle Handle { get { return handle; } }

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
            byte[] response = new byte[Scm.MAX_APDU_SIZE];
            UIntPtr len = new UIntPtr((uint)response.Length);
            NativeMethods.Check("scm_transmit", NativeMethods.scm_transmit(handle, command, new UIntPtr((uint)command.Length),
                                                                          response, ref len));
            Array.Resize(ref response, (int)len.ToUInt32());
            return response;
        }

        public byte[] Atr()
        {
            byte[] atr = new byte[64];
            UIntPtr len = new UIntPtr((uint)atr.Length);
            NativeMethods.Check("scm_get_atr", NativeMethods.scm_get_atr(handle, atr, ref len));
            Array.Resize(ref atr, (int)len.ToUInt32());
            return atr;
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

        public void Dispose() { handle.Dispose(); }
    }
}
