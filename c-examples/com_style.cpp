/*
 * COM client code, ported: the shape a Windows program using ISCardManage had (an object,
 * HRESULTs, FAILED()), on scardmanage's C++ header. Attach to a reader by name, read the state
 * and the ATR, send an APDU under the card lock, reconnect, detach.
 *
 *   c++ -std=c++11 com_style.cpp $(pkg-config --cflags --libs scardmanage) -o com_style
 *   ./com_style "Reader Name"
 */
#include <cstdio>
#include <vector>

#include "scardmanage.hpp"

static void PrintHex(const char *label, const std::vector<uint8_t> &bytes)
{
    std::printf("%s", label);
    for (size_t i = 0; i < bytes.size(); i++)
        std::printf(" %02X", bytes[i]);
    std::printf("\n");
}

static int Fail(const char *what, scm_hresult hr)
{
    std::fprintf(stderr, "%s failed: 0x%08lX %s\n", what, (unsigned long)(uint32_t)hr, scm::ErrorMessage(hr));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s \"Reader Name\"\n", argv[0]);
        return 2;
    }

    scm::SCardManage mgr;  // CoCreateInstance(CLSID_CSCardManage, ...)
    scm_hresult hr = mgr.Created();
    if (FAILED(hr))
        return Fail("create", hr);

    hr = mgr.AttachByIFD(argv[1]);
    if (FAILED(hr))
        return Fail("AttachByIFD", hr);
    std::printf("AttachByIFD: ok\n");

    uint32_t state = 0, protocol = 0;
    hr = mgr.Status(&state, &protocol);
    if (FAILED(hr))
        return Fail("Status", hr);
    std::printf("Status: state %u, protocol %u\n", (unsigned)state, (unsigned)protocol);

    std::vector<uint8_t> atr;
    hr = mgr.Atr(atr);
    if (FAILED(hr))
        return Fail("Atr", hr);
    PrintHex("ATR:", atr);

    hr = mgr.SCardLock();
    if (FAILED(hr))
        return Fail("SCardLock", hr);
    static const uint8_t echo[] = {0x80, 0x10, 0x00, 0x00, 0x03, 0x43, 0x4F, 0x4D};
    std::vector<uint8_t> response;
    hr = mgr.Transmit(std::vector<uint8_t>(echo, echo + sizeof echo), response);
    if (FAILED(hr))
        return Fail("Transmit", hr);
    PrintHex("ECHO ->", response);
    hr = mgr.SCardUnlock(SCM_LEAVE_CARD);
    if (FAILED(hr))
        return Fail("SCardUnlock", hr);

    // A second unlock: COM code checked for exactly this code.
    hr = mgr.SCardUnlock(SCM_LEAVE_CARD);
    if (hr != SCM_SCARD_E_NOT_TRANSACTED)
        return Fail("SCardUnlock without SCardLock", hr);
    std::printf("SCardUnlock again: 0x%08lX %s\n", (unsigned long)(uint32_t)hr, scm::ErrorMessage(hr));

    hr = mgr.Reconnect();
    if (FAILED(hr))
        return Fail("Reconnect", hr);
    std::printf("Reconnect: ok\n");

    scm::SCardManage moved(std::move(mgr));  // the manager changes owner; mgr is now empty
    hr = moved.Detach();
    if (FAILED(hr))
        return Fail("Detach", hr);
    if (mgr.Detach() != SCM_E_POINTER)
        return Fail("Detach on a moved-from manager", SCM_E_UNEXPECTED);
    std::printf("Detach: ok\n");
    return 0;
}
