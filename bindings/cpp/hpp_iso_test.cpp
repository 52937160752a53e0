/*
 * The C++ header's factories, waits and monitor, checked against the lab's ISO 7816-4 card: a
 * 40 000-byte file read and written back, a wrong PIN down to blocked and unblocked with the
 * PUK, the card's challenge and authentication, CreateInterface, a wait ended by a card the lab
 * inserts and by a cancel from another thread, and a monitor's events.
 *
 *   c++ -std=c++11 -pthread hpp_iso_test.cpp $(pkg-config --cflags --libs scardmanage) -o hpp_iso_test
 *   scm-lab run --iso -- sh -c './hpp_iso_test "$SCM_LAB_READER"'   (.ci/test-bindings runs it)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "check.hpp"
#include "scardmanage.hpp"

/* One request to the lab's control channel (SCM_LAB_CONTROL, "127.0.0.1:port"): the reply
 * after "ok", or exits. */
static std::string Lab(const std::string &request)
{
    const char *address = std::getenv("SCM_LAB_CONTROL");
    const char *colon = address == nullptr ? nullptr : std::strrchr(address, ':');
    if (colon == nullptr) {
        std::printf("FAILED: SCM_LAB_CONTROL is not set\n");
        std::exit(1);
    }
    sockaddr_in to;
    std::memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)std::atoi(colon + 1));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    std::string line = request + "\n", reply;
    char c;
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0 ||
        write(fd, line.data(), line.size()) != (ssize_t)line.size()) {
        std::printf("FAILED: lab %s: cannot reach the control channel\n", request.c_str());
        std::exit(1);
    }
    while (read(fd, &c, 1) == 1 && c != '\n')
        reply += c;
    close(fd);
    if (reply.compare(0, 2, "ok") != 0) {
        std::printf("FAILED: lab %s: %s\n", request.c_str(), reply.c_str());
        std::exit(1);
    }
    return reply.size() > 3 ? reply.substr(3) : std::string();
}

// The header claims noexcept for these; an exception through one would terminate.
static_assert(noexcept(scm::Monitor()), "the Monitor's constructor is noexcept");
static_assert(noexcept(scm::FileAccess()), "an empty FileAccess is made without throwing");
static_assert(noexcept(std::declval<scm::SCardManage &>().CreateFileAccess(std::declval<scm::FileAccess &>())),
              "CreateFileAccess is noexcept");
static_assert(noexcept(std::declval<scm::FileAccess &>().Read(1, 1, std::declval<std::vector<uint8_t> &>())),
              "Read is noexcept");

static std::vector<uint8_t> Big()
{
    std::vector<uint8_t> content(40000);
    for (size_t i = 0; i < content.size(); i++)
        content[i] = (uint8_t)(i % 251);
    return content;
}

static void Files(scm::SCardManage &mgr)
{
    scm::FileAccess files;
    CheckHr(mgr.CreateFileAccess(files), SCM_S_OK, "CreateFileAccess");
    CheckHr(files.ChangeDir(SCM_REF_BY_NAME, "F053434D49534F"), SCM_S_OK, "ChangeDir to the DF by its name");
    std::string dir;
    CheckHr(files.GetCurrentDir(dir), SCM_S_OK, "GetCurrentDir");
    std::printf("  current dir: %s\n", dir.c_str());
    Check(dir == "F053434D49534F", "the current dir is the DF, by its name");
    uint32_t file = 0;
    CheckHr(files.Open(SCM_REF_BY_ID, "5002", &file), SCM_S_OK, "Open EF 5002");
    std::vector<uint8_t> data;
    CheckHr(files.Read(file, 50000, data), SCM_S_OK, "Read asks for 50 000 bytes");
    Check(data == Big(), "and gets the file's 40 000 bytes, bit-exact");
    CheckHr(files.Read(file, 10, data), SCM_SCARD_W_EOF, "a read at the end is SCARD_W_EOF");
    Check(data.empty(), "and leaves data empty, as the C call's *len 0 says (not the bytes read before)");
    std::vector<uint8_t> written(40000);
    for (size_t i = 0; i < written.size(); i++)
        written[i] = (uint8_t)(i * 13 + 5);
    uint64_t position = 1;
    CheckHr(files.Seek(file, SCM_SEEK_FROM_BEGINNING, 0, &position), SCM_S_OK, "Seek to 0");
    Check(position == 0, "the position is 0");
    CheckHr(files.Write(file, written), SCM_S_OK, "Write 40 000 bytes");
    CheckHr(files.Seek(file, SCM_SEEK_FROM_END, -40000, &position), SCM_S_OK, "Seek from the end");
    CheckHr(files.Read(file, 40000, data), SCM_S_OK, "Read them back");
    Check(data == written, "what was written, bit-exact");
    CheckHr(files.Close(file), SCM_S_OK, "Close");
    std::vector<uint8_t> fcp;
    CheckHr(files.GetProperties(SCM_REF_BY_ID, "5001", 0, fcp), SCM_S_OK, "GetProperties of EF 5001");
    Check(!fcp.empty() && fcp[0] == 0x62, "the FCP template, tag 62 first");
    CheckHr(files.Open(SCM_REF_BY_ID, "5999", &file), SCM_SCARD_E_FILE_NOT_FOUND, "a missing file");
    scm::FileAccess moved(std::move(files));
    CheckHr(files.ChangeDir(SCM_REF_BY_ID, "3F00"), SCM_E_POINTER, "a moved-from FileAccess is SCM_E_POINTER");
    CheckHr(moved.ChangeDir(SCM_REF_BY_ID, "3F00"), SCM_S_OK, "the moved one works");
}

static void Pin(scm::SCardManage &mgr)
{
    static const uint8_t wrong[] = {'9', '9', '9', '9'}, pin[] = {'1', '2', '3', '4'},
                         puk[] = {'1', '2', '3', '4', '5', '6', '7', '8'};
    scm::CHVerification chv;
    CheckHr(mgr.CreateCHVerification(chv), SCM_S_OK, "CreateCHVerification");
    uint32_t tries = 99;
    for (uint32_t left = 2; left != (uint32_t)-1; left--) {
        CheckHr(chv.Verify(0x81, wrong, sizeof wrong, 0, &tries), SCM_SCARD_W_WRONG_CHV, "a wrong PIN");
        Check(tries == left, "with the tries left");
    }
    CheckHr(chv.Verify(0x81, pin, sizeof pin, 0, &tries), SCM_SCARD_W_CHV_BLOCKED, "then the right one: blocked");
    CheckHr(chv.Unblock(0x81, puk, sizeof puk, pin, sizeof pin), SCM_S_OK, "Unblock with the PUK");
    CheckHr(chv.GetTriesLeft(0x81, &tries), SCM_S_OK, "GetTriesLeft");
    Check(tries == 3, "3 tries again");
    CheckHr(chv.Verify(0x81, pin, sizeof pin, 0, &tries), SCM_S_OK, "Verify the PIN");
    CheckHr(chv.ResetSecurityState(), SCM_S_OK, "ResetSecurityState");
}

static void Auth(scm::SCardManage &mgr)
{
    scm::CardAuth auth;
    CheckHr(mgr.CreateInterface(scm::IID_ISCardAuth, nullptr, auth), SCM_S_OK, "CreateInterface(IID_ISCardAuth)");
    std::vector<uint8_t> one, two;
    CheckHr(auth.GetChallenge(8, one), SCM_S_OK, "GetChallenge");
    CheckHr(auth.GetChallenge(8, two), SCM_S_OK, "GetChallenge again");
    Check(one.size() == 8 && two.size() == 8 && one != two, "two different 8-byte challenges");
    static const char key[] = "SCM-KEY!";
    std::vector<uint8_t> data(12, 0x41), answer, expected(12);
    for (size_t i = 0; i < data.size(); i++)
        expected[i] = (uint8_t)(data[i] ^ key[i % 8]);
    CheckHr(auth.InternalAuthenticate(0, 1, data, answer), SCM_S_OK, "InternalAuthenticate");
    Check(answer == expected, "the card's answer is the data under its key");
    CheckHr(auth.GetChallenge(8, one), SCM_S_OK, "a challenge for ExternalAuthenticate");
    for (size_t i = 0; i < one.size(); i++)
        one[i] = (uint8_t)(one[i] ^ key[i]);
    CheckHr(auth.ExternalAuthenticate(0, 1, one), SCM_S_OK, "ExternalAuthenticate with the right answer");
    scm::FileAccess files;
    CheckHr(mgr.CreateInterface(scm::IID_ISCardAuth, nullptr, files), SCM_E_INVALIDARG,
            "CreateInterface of CardAuth into a FileAccess");
    CheckHr(files.ChangeDir(SCM_REF_BY_ID, "3F00"), SCM_E_POINTER, "which stays empty");
    CheckHr(mgr.CreateInterface(nullptr, "CryptoProvider", files), SCM_E_NOTIMPL, "CreateInterface(\"CryptoProvider\")");
    scm::CHVerification chv;
    CheckHr(mgr.CreateInterface(nullptr, "CHVerification", chv), SCM_S_OK, "CreateInterface(\"CHVerification\")");
    CheckHr(chv.Release(), SCM_S_OK, "Release");
    CheckHr(chv.Release(), SCM_E_POINTER, "a released object is empty");
}

static void Wait(const std::string &empty)
{
    scm::SCardManage mgr;
    CheckHr(mgr.AttachByIFD(empty.c_str()), SCM_S_OK, "attach to the empty reader");
    uint32_t state = 0;
    CheckHr(mgr.WaitForChange(200, &state), SCM_SCARD_E_TIMEOUT, "WaitForChange: nothing changes");
    std::thread inserting([] { Lab("insert 1"); });
    scm_hresult hr = mgr.WaitForChange(30000, &state);
    inserting.join();
    CheckHr(hr, SCM_S_OK, "WaitForChange sees the card the lab inserts");
    Check(state == SCM_STATE_PRESENT, "a card is there (PRESENT: not connected yet)");
    std::thread removing([] { Lab("remove 1"); });
    CheckHr(mgr.WaitForChange(30000, &state), SCM_S_OK, "WaitForChange sees it removed");
    removing.join();
    Check(state == SCM_STATE_ABSENT, "the reader is empty");
    std::thread cancelling([&mgr] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        mgr.Cancel();
    });
    CheckHr(mgr.WaitForChange(SCM_WAIT_INFINITE, &state), SCM_SCARD_E_CANCELLED, "Cancel from another thread");
    cancelling.join();
}

static void Watch(const std::string &first, const std::string &empty)
{
    scm::Monitor monitor;
    CheckHr(monitor.Created(), SCM_S_OK, "a Monitor");
    uint32_t event = 0;
    std::string reader;
    bool first_card = false;
    int events = 0;
    // What is there comes first: every reader, and the ISO card in the first.
    while (SUCCEEDED(monitor.Next(1000, &event, reader))) {
        events++;
        first_card = first_card || (event == SCM_EVENT_CARD_INSERTED && reader == first);
    }
    Check(first_card, "the first events report the card already there");
    Check(events == 3, "and both readers: 3 events");
    Lab("insert 1");
    CheckHr(monitor.Next(30000, &event, reader), SCM_S_OK, "an event after the lab inserts a card");
    Check(event == SCM_EVENT_CARD_INSERTED && reader == empty, "CARD_INSERTED in that reader");
    Lab("remove 1");
    CheckHr(monitor.Next(30000, &event, reader), SCM_S_OK, "an event after the lab removes it");
    Check(event == SCM_EVENT_CARD_REMOVED && reader == empty, "CARD_REMOVED in that reader");
    std::thread cancelling([&monitor] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        monitor.Cancel();
    });
    CheckHr(monitor.Next(SCM_WAIT_INFINITE, &event, reader), SCM_SCARD_E_CANCELLED, "Cancel from another thread");
    cancelling.join();
}

static void AfterRelease(const char *reader)
{
    scm::CardAuth auth;
    std::vector<uint8_t> challenge, atr, attribute;
    {
        scm::SCardManage mgr;
        CheckHr(mgr.AttachByIFD(reader), SCM_S_OK, "attach");
        CheckHr(mgr.Atr(atr), SCM_S_OK, "the card's ATR");
        CheckHr(mgr.GetAttrib(SCM_ATTR_ATR_STRING, attribute), SCM_S_OK, "GetAttrib(SCM_ATTR_ATR_STRING)");
        Check(attribute == atr, "is the card's ATR");
        CheckHr(mgr.CreateCardAuth(auth), SCM_S_OK, "CreateCardAuth");
        CheckHr(mgr.Detach(), SCM_S_OK, "Detach");
        CheckHr(auth.GetChallenge(8, challenge), SCM_E_NOT_ATTACHED, "an object of a detached manager");
    }
    CheckHr(auth.GetChallenge(8, challenge), SCM_E_HANDLE, "an object of a released manager");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s \"Reader Name\"\n", argv[0]);
        return 2;
    }
    Lab("iso-reset 0");
    scm::SCardManage mgr;
    CheckHr(mgr.AttachByIFD(argv[1]), SCM_S_OK, "AttachByIFD");
    Files(mgr);
    Pin(mgr);
    Auth(mgr);
    std::vector<uint8_t> answer;
    static const uint8_t challenge[] = {0x00, 0x84, 0x00, 0x00, 0x08};
    CheckHr(mgr.TransmitEx(SCM_ISO_ALL, std::vector<uint8_t>(challenge, challenge + 5), answer), SCM_S_OK, "TransmitEx");
    Check(answer.size() == 10 && answer[8] == 0x90 && answer[9] == 0x00, "GET CHALLENGE through TransmitEx");
    Lab("iso-reset 0");
    const std::string empty = Lab("reader 1");
    Wait(empty);
    Watch(argv[1], empty);
    AfterRelease(argv[1]);
    return Finish("hpp iso");
}
