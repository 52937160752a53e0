// The .NET binding's factories, waits and monitor, checked against the lab's ISO 7816-4 card
// (scm-lab run --iso): a 40 000-byte file read and written back, a wrong PIN down to blocked and
// unblocked with the PUK, the card's challenge and authentication, CreateInterface, a wait ended
// by a card the lab inserts and by Cancel from another thread, the Monitor's events from its
// thread, and its Error event when the monitor is released under that thread. Exits non-zero at
// the first result that is not what a user expects (an exception, which Mono prints, exiting 1).
//
//   mcs -r:ScardManage.dll -out:isotest.exe IsoTest.cs && mono isotest.exe "Reader Name"
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using ScardManage;
// Both names are also System's (System.IO.FileAccess, System.Threading.Monitor).
using FileAccess = ScardManage.FileAccess;
using Monitor = ScardManage.Monitor;

static class IsoTest
{
    const string DfName = "F053434D49534F";
    static readonly byte[] Key = Encoding.ASCII.GetBytes("SCM-KEY!");

    const string ExitWithARunningMonitor = "--exit-with-a-running-monitor";

    static int Main(string[] args)
    {
        if (args.Length == 1 && args[0] == ExitWithARunningMonitor)
        {
            // A program that ends with its monitor's thread still waiting: no Stop, no Dispose.
            Monitor monitor = new Monitor();
            ManualResetEvent first = new ManualResetEvent(false);
            monitor.ReaderAdded += (sender, e) => first.Set();
            monitor.Start();
            return first.WaitOne(30000) ? 0 : 1;
        }
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: mono isotest.exe \"Reader Name\"");
            return 2;
        }
        Lab("iso-reset 0");
        using (SCardManage mgr = new SCardManage())
        {
            mgr.AttachByIFD(args[0]);
            Files(mgr);
            Pin(mgr);
            Auth(mgr);
            byte[] answer = mgr.TransmitEx(new byte[] { 0x00, 0x84, 0x00, 0x00, 0x08 }, Scm.ISO_ALL);
            Expect(answer.Length == 10 && answer[8] == 0x90 && answer[9] == 0x00, "GET CHALLENGE through TransmitEx");
            Console.WriteLine("TransmitEx: " + answer.Length + " bytes");
        }
        Lab("iso-reset 0");
        string empty = Lab("reader 1");
        Wait(empty);
        Watch(args[0], empty);
        MonitorErrorIsRaised(args[0]);
        AfterRelease(args[0]);
        ProcessEndsWithARunningMonitor();
        Console.WriteLine("dotnet iso: all checks passed");
        return 0;
    }

    static void Files(SCardManage mgr)
    {
        using (FileAccess files = mgr.CreateFileAccess())
        {
            files.ChangeDir(Scm.REF_BY_NAME, DfName);
            string dir = files.GetCurrentDir();
            Console.WriteLine("current dir: " + dir);
            Expect(dir == DfName, "the current dir is the DF, by its name");
            uint file = files.Open(Scm.REF_BY_ID, "5002");
            byte[] big = files.Read(file, 50000);
            Expect(big.Length == 40000 && big.Select((b, i) => b == (byte)(i % 251)).All(ok => ok), "EF 5002's 40 000 bytes");
            Expect(files.Read(file, 10).Length == 0, "nothing at the end");
            byte[] written = Enumerable.Range(0, 40000).Select(i => (byte)(i * 13 + 5)).ToArray();
            Expect(files.Seek(file, Scm.SEEK_FROM_BEGINNING, 0) == 0, "Seek to 0");
            files.Write(file, written);
            Expect(files.Seek(file, Scm.SEEK_FROM_END, -40000) == 0, "Seek from the end");
            Expect(files.Read(file, 40000).SequenceEqual(written), "40 000 bytes written and read back, bit-exact");
            files.Close(file);
            byte[] fcp = files.GetProperties(Scm.REF_BY_ID, "5001");
            Expect(fcp.Length > 2 && fcp[0] == 0x62, "the FCP, tag 62 first");
            ExpectFailure(Scm.SCARD_E_FILE_NOT_FOUND, () => files.Open(Scm.REF_BY_ID, "5999"), "a missing file");
            Console.WriteLine("files: 40 000 bytes read, written and read back");
        }
    }

    static void Pin(SCardManage mgr)
    {
        byte[] wrong = Encoding.ASCII.GetBytes("9999"), pin = Encoding.ASCII.GetBytes("1234");
        using (ChvVerification chv = mgr.CreateCHVerification())
        {
            Expect(chv.GetTriesLeft(0x81) == 3, "3 tries");
            for (uint left = 2; left != uint.MaxValue; left--)
            {
                SCardException e = ExpectFailure(Scm.SCARD_W_WRONG_CHV, () => chv.Verify(0x81, wrong), "a wrong PIN");
                Expect(e.TriesLeft == left, "tries left " + left + ", got " + e.TriesLeft);
                Expect(!e.Message.Contains("9999"), "the code is not in the message");
            }
            SCardException blocked = ExpectFailure(Scm.SCARD_W_CHV_BLOCKED, () => chv.Verify(0x81, pin), "blocked");
            Expect(blocked.TriesLeft == 0, "blocked: 0 tries left");
            chv.Unblock(0x81, Encoding.ASCII.GetBytes("12345678"), pin);
            Expect(chv.GetTriesLeft(0x81) == 3, "3 tries after Unblock");
            chv.Verify(0x81, pin);
            chv.ChangeCode(0x81, pin, Encoding.ASCII.GetBytes("4321"));
            chv.ResetSecurityState();
            chv.Verify(0x81, Encoding.ASCII.GetBytes("4321"));
            Console.WriteLine("PIN: wrong down to blocked, unblocked with the PUK, changed");
        }
    }

    static void Auth(SCardManage mgr)
    {
        using (CardAuth auth = (CardAuth)mgr.CreateInterface(Scm.IID_ISCardAuth))
        {
            byte[] one = auth.GetChallenge(8), two = auth.GetChallenge(8);
            Expect(one.Length == 8 && two.Length == 8 && !one.SequenceEqual(two), "two different challenges");
            byte[] data = Encoding.ASCII.GetBytes("hello card");
            Expect(auth.InternalAuthenticate(0, 1, data).SequenceEqual(UnderKey(data)), "INTERNAL AUTHENTICATE");
            auth.ExternalAuthenticate(0, 1, UnderKey(auth.GetChallenge(8)));
            Console.WriteLine("auth: challenge, internal and external authenticate");
        }
        using (IDisposable chv = mgr.CreateInterface("CHVerification"))
            Expect(chv is ChvVerification, "CreateInterface(\"CHVerification\")");
        using (IDisposable files = mgr.CreateInterface(Scm.IID_ISCardFileAccess))
            Expect(files is FileAccess, "CreateInterface(IID_ISCardFileAccess)");
        ExpectFailure(Scm.E_NOTIMPL, () => mgr.CreateInterface("CryptoProvider"), "CryptoProvider");
    }

    static void Wait(string empty)
    {
        using (SCardManage mgr = new SCardManage())
        {
            mgr.AttachByIFD(empty);
            uint state;
            Expect(!mgr.WaitForChange(200, out state), "nothing changes in 200 ms");
            Thread inserting = new Thread(() => Lab("insert 1"));
            inserting.Start();
            Expect(mgr.WaitForChange(30000, out state), "WaitForChange sees the card the lab inserts");
            inserting.Join();
            Expect(state == Scm.STATE_PRESENT, "a card is there (PRESENT: not connected yet)");
            Lab("remove 1");
            Expect(mgr.WaitForChange(30000, out state) && state == Scm.STATE_ABSENT, "and sees it removed");
            new Thread(() => { Thread.Sleep(300); mgr.Cancel(); }).Start();
            ExpectFailure(Scm.SCARD_E_CANCELLED, () => mgr.WaitForChange(Scm.WAIT_INFINITE, out state), "Cancel from another thread");
            Console.WriteLine("wait: inserted, removed, cancelled");
        }
    }

    static void Watch(string first, string empty)
    {
        List<string> seen = new List<string>();
        using (Monitor monitor = new Monitor())
        {
            EventHandler<MonitorEventArgs> record = (sender, e) => { lock (seen) { seen.Add(e.Kind + " " + e.Reader); System.Threading.Monitor.PulseAll(seen); } };
            monitor.ReaderAdded += record;
            monitor.CardInserted += record;
            monitor.CardRemoved += record;
            monitor.ReaderRemoved += record;
            monitor.Start();
            WaitFor(seen, s => s.Count >= 3, "what is there first");
            int start = Count(seen);
            string[] there = { Scm.EVENT_READER_ADDED + " " + first, Scm.EVENT_CARD_INSERTED + " " + first,
                               Scm.EVENT_READER_ADDED + " " + empty };
            lock (seen)
                Expect(start == 3 && seen.SequenceEqual(there), "each reader, then its card: " + string.Join(", ", seen));
            Lab("insert 1");
            Lab("remove 1");
            WaitFor(seen, s => s.Count >= start + 2, "two more events");
            monitor.Stop();
            lock (seen)
                Expect(seen.Skip(start).SequenceEqual(new[] { Scm.EVENT_CARD_INSERTED + " " + empty, Scm.EVENT_CARD_REMOVED + " " + empty }),
                       "CardInserted then CardRemoved: " + string.Join(", ", seen));
            Console.WriteLine("monitor: " + start + " events at start, then inserted and removed");
        }
    }

    [DllImport("scardmanage", CallingConvention = CallingConvention.Cdecl)]
    static extern int scm_monitor_release(IntPtr monitor);

    static void MonitorErrorIsRaised(string reader)
    {
        Monitor monitor = new Monitor();
        Exception reported = null;
        ManualResetEvent first = new ManualResetEvent(false), failed = new ManualResetEvent(false);
        monitor.ReaderAdded += (sender, e) => first.Set();
        monitor.Error += (sender, e) => { reported = e.Error; failed.Set(); };
        monitor.Start();
        Expect(first.WaitOne(30000), "a first event");
        // Released under the monitor's thread, as a program's bug would: the thread must say so.
        Expect(scm_monitor_release(monitor.Handle.DangerousGetHandle()) == 0, "the monitor released under its thread");
        Expect(failed.WaitOne(30000), "the Error event");
        SCardException error = reported as SCardException;
        Expect(error != null && error.HResult == Scm.E_HANDLE && error.Operation == "scm_monitor_next", "Error: " + reported);
        monitor.Stop();
        Console.WriteLine("monitor released under its thread: Error event, " + error.Message);

        // An Error handler that returns lets the thread go on: the card after the failed event comes.
        using (Monitor goingOn = new Monitor())
        {
            int errors = 0;
            ManualResetEvent card = new ManualResetEvent(false);
            goingOn.ReaderAdded += (sender, e) => { if (e.Reader == reader) throw new InvalidDataException("handler failed once"); };
            goingOn.CardInserted += (sender, e) => card.Set();
            goingOn.Error += (sender, e) => Interlocked.Increment(ref errors);
            goingOn.Start();
            Expect(card.WaitOne(30000) && errors == 1, "the thread goes on after an Error handler returns: " + errors);
            Console.WriteLine("an Error handler that returns: the thread goes on");
        }

        // With no Error handler, Stop() throws what ended the thread.
        Monitor failing = new Monitor();
        ManualResetEvent thrown = new ManualResetEvent(false);
        failing.ReaderAdded += (sender, e) => { thrown.Set(); throw new InvalidDataException("handler failed"); };
        failing.Start();
        // Not a fixed sleep: a Dispose before the first event would stop a thread that has
        // nothing to throw yet.
        Expect(thrown.WaitOne(30000), "the failing handler ran");
        try
        {
            failing.Dispose();
            throw new Exception("Dispose did not throw the handler's exception");
        }
        catch (InvalidDataException)
        {
            Console.WriteLine("a handler's exception: thrown again by Dispose");
        }
    }

    static void AfterRelease(string reader)
    {
        CardAuth auth;
        using (SCardManage mgr = new SCardManage())
        {
            mgr.AttachByIFD(reader);
            Expect(mgr.GetAttrib(Scm.ATTR_ATR_STRING).SequenceEqual(mgr.Atr()), "ATTR_ATR_STRING is the ATR");
            auth = mgr.CreateCardAuth();
            mgr.Detach();
            ExpectFailure(Scm.E_NOT_ATTACHED, () => auth.GetChallenge(8), "an object of a detached manager");
        }
        ExpectFailure(Scm.E_HANDLE, () => auth.GetChallenge(8), "an object of a released manager");
        auth.Dispose();
        try
        {
            auth.GetChallenge(8);
            throw new Exception("a disposed CardAuth did not raise");
        }
        catch (ObjectDisposedException)
        {
            Console.WriteLine("disposed CardAuth: ObjectDisposedException");
        }
    }

    // The monitor's thread is a background thread: it must not keep the process from ending.
    static void ProcessEndsWithARunningMonitor()
    {
        ProcessStartInfo start = new ProcessStartInfo(Process.GetCurrentProcess().MainModule.FileName,
            "\"" + System.Reflection.Assembly.GetEntryAssembly().Location + "\" " + ExitWithARunningMonitor);
        start.UseShellExecute = false;
        using (Process child = Process.Start(start))
        {
            bool ended = child.WaitForExit(30000);
            if (!ended)
                child.Kill();
            Expect(ended && child.ExitCode == 0, "a program that ends with its monitor running ends (exit " +
                   (ended ? child.ExitCode.ToString() : "none in 30 s") + ")");
        }
        Console.WriteLine("a program ending with its monitor running: ends");
    }

    static byte[] UnderKey(byte[] data)
    {
        return data.Select((b, i) => (byte)(b ^ Key[i % Key.Length])).ToArray();
    }

    static int Count(List<string> seen)
    {
        lock (seen)
            return seen.Count;
    }

    static void WaitFor(List<string> seen, Func<List<string>, bool> done, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        lock (seen)
            while (!done(seen))
            {
                TimeSpan left = deadline - DateTime.UtcNow;
                Expect(left > TimeSpan.Zero, what + ": " + string.Join(", ", seen));
                System.Threading.Monitor.Wait(seen, left);
            }
    }

    // One request to the lab's control channel (SCM_LAB_CONTROL, "127.0.0.1:port"): the reply
    // after "ok".
    static string Lab(string request)
    {
        string[] address = Environment.GetEnvironmentVariable("SCM_LAB_CONTROL").Split(':');
        using (TcpClient client = new TcpClient(address[0], int.Parse(address[1])))
        using (StreamReader replies = new StreamReader(client.GetStream()))
        {
            byte[] line = Encoding.UTF8.GetBytes(request + "\n");
            client.GetStream().Write(line, 0, line.Length);
            string reply = replies.ReadLine();
            Expect(reply == "ok" || reply.StartsWith("ok "), "lab " + request + ": " + reply);
            return reply.Length > 3 ? reply.Substring(3) : "";
        }
    }

    static SCardException ExpectFailure(int hresult, Action call, string what)
    {
        try
        {
            call();
        }
        catch (SCardException e)
        {
            Expect(e.HResult == hresult, string.Format("{0}: 0x{1:X8}, got 0x{2:X8}", what, hresult, e.HResult));
            return e;
        }
        throw new Exception(what + ": no SCardException");
    }

    static void Expect(bool condition, string what)
    {
        if (!condition)
            throw new Exception("check failed: " + what);
    }
}
