// The .NET tour and its test: run against a reader with the lab's default-applet card, it
// prints what it does and exits non-zero at the first result that is not what a user expects.
//
//   mcs -out:demo.exe ScardManage.cs Demo.cs && mono demo.exe "Reader Name"
using System;
using System.Diagnostics;
using System.Linq;
using ScardManage;

static class Demo
{
    static int Main(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: mono demo.exe \"Reader Name\"");
            return 2;
        }
        try
        {
            Run(args[0]);
            Console.WriteLine("dotnet: all checks passed");
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("dotnet: FAILED: " + e);
            return 1;
        }
    }

    static void Run(string reader)
    {
        Console.WriteLine("scardmanage " + Scm.Version);
        string[] readers = SCardManage.ListReaders();
        Expect(readers.Contains(reader), "ListReaders has " + reader + ": " + string.Join(", ", readers));
        Console.WriteLine("readers: " + readers.Length);
        ReaderListGrowingBetweenSizeAndFetch(string.Join("\0", readers) + "\0\0");

        IntPtr rawToken;
        using (SCardManage mgr = new SCardManage())
        {
            rawToken = mgr.Handle.DangerousGetHandle();

            mgr.AttachByIFD(reader);
            Console.WriteLine("attached (UTF-8) to " + mgr.ReaderName());
            uint state, protocol;
            mgr.Status(out state, out protocol);
            Console.WriteLine("state " + state + ", protocol " + protocol);
            Expect(state == Scm.STATE_SPECIFIC && protocol == Scm.PROTOCOL_T1, "status SPECIFIC, T=1");

            string atr = Hex(mgr.Atr());
            Console.WriteLine("ATR: " + atr);
            Expect(atr == "3B 80 01 81", "the lab card's ATR");

            string echo = Hex(mgr.Transmit(new byte[] { 0x80, 0x10, 0x00, 0x00, 0x02, 0xCA, 0xFE }));
            Console.WriteLine("ECHO -> " + echo);
            Expect(echo == "CA FE 90 00", "ECHO returns its data and 90 00");

            mgr.SCardLock();
            byte[] read = mgr.Transmit(new byte[] { 0x80, 0x20, 0x01, 0x2C, 0x00 });
            mgr.SCardUnlock(Scm.LEAVE_CARD);
            Console.WriteLine("locked READ 300 -> " + read.Length + " bytes, SW " + Hex(read.Skip(300).ToArray()));
            Expect(read.Length == 302 && read[299] == 43 && read[300] == 0x90, "READ 300 bytes");

            ExpectFailure(Scm.SCARD_E_NOT_TRANSACTED, () => mgr.SCardUnlock(Scm.LEAVE_CARD), "unlock without lock");

            mgr.Reconnect();
            mgr.Status(out state, out protocol);
            Console.WriteLine("reconnected: state " + state);
            Expect(state == Scm.STATE_SPECIFIC, "SPECIFIC after Reconnect");

            mgr.Detach();
            Console.WriteLine("detached");
            ExpectFailure(Scm.E_NOT_ATTACHED, () => mgr.Atr(), "ATR after detach");

            mgr.AttachByIFDW(reader);
            Console.WriteLine("attached (UTF-16) to " + mgr.ReaderName());
            Expect(mgr.CardHandle() != UIntPtr.Zero, "a card handle");
            mgr.Detach();

            ExpectFailure(Scm.SCARD_E_UNKNOWN_READER, () => mgr.AttachByIFD("No Such Reader"), "unknown reader");
            ExpectFailure(Scm.E_INVALIDARG, () => mgr.AttachByIFDW("\uD800 lone surrogate"), "unpaired surrogate");
            // Sent as UTF-8, a lone surrogate must not become U+FFFD, a valid name of another reader.
            ExpectFailure(Scm.E_INVALIDARG, () => mgr.AttachByIFD("\uD800 lone surrogate"), "unpaired surrogate, UTF-8");
            ExpectFailure(Scm.E_INVALIDARG, () => mgr.AttachByIFD(reader + "\uDC00", 2, 3), "unpaired surrogate, UTF-8 _ex");

            // The caller's buffers are managed arrays pinned for the call: many calls, no growth.
            long before = Process.GetCurrentProcess().WorkingSet64;
            for (int i = 0; i < 2000; i++)
            {
                mgr.AttachByIFD(reader);
                mgr.Transmit(new byte[] { 0x80, 0x10, 0x00, 0x00, 0x01, (byte)i });
                mgr.Atr();
                mgr.Detach();
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long grown = Process.GetCurrentProcess().WorkingSet64 - before;
            Console.WriteLine("2000 attach/transmit/atr/detach rounds: working set grew " + grown / 1024 + " KiB");
            Expect(grown < 32L * 1024 * 1024, "no leak over 2000 rounds");
        }
        Console.WriteLine("disposed");

        // A disposed manager raises, from .NET; its old token is refused by the library.
        SCardManage gone = new SCardManage();
        gone.Dispose();
        gone.Dispose();
        try
        {
            uint s, p;
            gone.Status(out s, out p);
            throw new Exception("Status on a disposed manager did not raise");
        }
        catch (ObjectDisposedException)
        {
            Console.WriteLine("disposed manager: ObjectDisposedException");
        }
        int hr = NativeMethods.scm_release(rawToken);
        Console.WriteLine(string.Format("released token again: 0x{0:X8} {1}", hr, Scm.ErrorMessage(hr)));
        Expect(hr == Scm.E_HANDLE, "a released token is SCM_E_HANDLE");
    }

    // A reader plugged in between the size query and the fetch: the real list, with the size
    // PC/SC gave before the last reader came (one byte short). The fetch then gets the library's
    // SCARD_E_INSUFFICIENT_BUFFER with the new size, and must ask again.
    static void ReaderListGrowingBetweenSizeAndFetch(string expected)
    {
        int sizeQueries = 0;
        byte[] multi = NativeMethods.Fetch("scm_list_readers", (byte[] buffer, ref UIntPtr len) =>
        {
            int hr = NativeMethods.scm_list_readers(buffer, ref len);
            if (buffer == null && sizeQueries++ == 0)
                len = new UIntPtr(len.ToUInt32() - 1);
            return hr;
        });
        Expect(System.Text.Encoding.UTF8.GetString(multi) == expected, "the whole list after a retry");
        Console.WriteLine("reader list grown between size and fetch: fetched again, " + multi.Length + " bytes");
    }

    static void ExpectFailure(int hresult, Action call, string what)
    {
        try
        {
            call();
        }
        catch (SCardException e)
        {
            Console.WriteLine(what + ": " + e.Message);
            Expect(e.HResult == hresult, string.Format("{0}: 0x{1:X8}, got 0x{2:X8}", what, hresult, e.HResult));
            Expect(e.Message.EndsWith(Scm.ErrorMessage(hresult)), what + ": the library's message");
            return;
        }
        throw new Exception(what + ": no SCardException");
    }

    static void Expect(bool condition, string what)
    {
        if (!condition)
            throw new Exception("check failed: " + what);
    }

    static string Hex(byte[] bytes)
    {
        return string.Join(" ", bytes.Select(b => b.ToString("X2")));
    }
}
