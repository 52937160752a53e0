/*
 * The C++ header's promises, checked against a lab reader holding the default-applet card:
 * answers keep about their size, a moved-from manager explains its SCM_E_POINTER, an empty
 * command is SCM_E_INVALIDARG as in C, and nothing throws, not even when memory runs out.
 *
 *   c++ -std=c++11 hpp_test.cpp $(pkg-config --cflags --libs scardmanage) -o hpp_test
 *   ./hpp_test "Reader Name"      (.ci/test-bindings runs it under scm-lab)
 */
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "check.hpp"
#include "scardmanage.hpp"

// Every allocation of this program comes here, so a test can make allocations fail: after
// this many more succeed (-1: never).
static long g_allocations_left = -1;

void *operator new(std::size_t size)
{
    if (g_allocations_left == 0)
        throw std::bad_alloc();
    if (g_allocations_left > 0)
        g_allocations_left--;
    void *p = std::malloc(size == 0 ? 1 : size);
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

void operator delete(void *p) noexcept { std::free(p); }
#if defined(__cpp_sized_deallocation)
// From C++14 the sized form is replaceable too: a program replacing one replaces both.
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
#endif

static const uint8_t kEcho1[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x5A};

static void AnswersKeepTheirSize(scm::SCardManage &mgr)
{
    std::vector<std::vector<uint8_t>> kept(1000);
    const std::vector<uint8_t> echo(kEcho1, kEcho1 + sizeof kEcho1);
    scm_hresult hr = SCM_S_OK;
    for (size_t i = 0; i < kept.size() && SUCCEEDED(hr); i++)
        hr = mgr.Transmit(echo, kept[i]);
    CheckHr(hr, SCM_S_OK, "1000 ECHO transmits");
    size_t held = 0;
    for (size_t i = 0; i < kept.size(); i++)
        held += kept[i].capacity();
    std::printf("  1000 kept 3-byte answers hold %lu bytes\n", (unsigned long)held);
    Check(kept[999] == std::vector<uint8_t>({0x5A, 0x90, 0x00}), "the answer is the echo and 90 00");
    Check(held <= 1000 * 64, "an answer's capacity is about its size");
}

static void EmptyCommandIsInvalidArg(scm::SCardManage &mgr)
{
    std::vector<uint8_t> response(1, 0x77);
    CheckHr(mgr.Transmit(std::vector<uint8_t>(), response), SCM_E_INVALIDARG, "an empty command is SCM_E_INVALIDARG");
    Check(response == std::vector<uint8_t>(1, 0x77), "a failed Transmit leaves the response alone");
}

static void MoveAssignmentEmptiesTheSource(const char *reader)
{
    scm::SCardManage target, source;
    CheckHr(source.AttachByIFD(reader), SCM_S_OK, "attach the source");
    target = std::move(source);
    uint32_t state = 0, protocol = 0;
    CheckHr(target.Status(&state, &protocol), SCM_S_OK, "the target has the source's manager");
    CheckHr(source.Status(&state, &protocol), SCM_E_POINTER, "a moved-from manager answers SCM_E_POINTER");
    CheckHr(source.Created(), SCM_E_POINTER, "and its Created() says so");
    scm::SCardManage constructed(std::move(target));
    CheckHr(target.Created(), SCM_E_POINTER, "a move-constructed-from manager's Created() too");
    CheckHr(constructed.Detach(), SCM_S_OK, "the moved manager detaches");
}

// The header claims noexcept for all of these; an exception through one would terminate.
static_assert(noexcept(scm::SCardManage()), "the constructor is noexcept");
static_assert(noexcept(scm::ErrorMessage(SCM_S_OK)), "ErrorMessage is noexcept");

static void NothingThrows(scm::SCardManage &mgr)
{
    const std::vector<uint8_t> echo(kEcho1, kEcho1 + sizeof kEcho1);
    std::vector<uint8_t> response, atr, kept(1, 0x77);
    scm_hresult transmitted = SCM_S_OK, got_atr = SCM_S_OK, answer_lost = SCM_S_OK;
    bool threw = false;
    g_allocations_left = 0;
    try {
        transmitted = mgr.Transmit(echo, response);
        got_atr = mgr.Atr(atr);
    } catch (...) {
        threw = true;
    }
    // Memory for Transmit's scratch, none for the answer's vector: the command was sent.
    g_allocations_left = 1;
    try {
        answer_lost = mgr.Transmit(echo, kept);
    } catch (...) {
        threw = true;
    }
    g_allocations_left = -1;
    Check(!threw, "Transmit and Atr do not throw when allocations fail");
    CheckHr(transmitted, SCM_E_OUTOFMEMORY, "Transmit without memory is SCM_E_OUTOFMEMORY");
    CheckHr(got_atr, SCM_E_OUTOFMEMORY, "Atr without memory is SCM_E_OUTOFMEMORY");
    CheckHr(answer_lost, SCM_E_OUTOFMEMORY, "Transmit with no memory for the answer is SCM_E_OUTOFMEMORY");
    Check(kept == std::vector<uint8_t>(1, 0x77), "and leaves the response alone");
    CheckHr(mgr.Atr(atr), SCM_S_OK, "Atr with memory again");
    Check(atr.size() == 4 && atr[0] == 0x3B, "the lab card's ATR");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s \"Reader Name\"\n", argv[0]);
        return 2;
    }
    scm::SCardManage mgr;
    CheckHr(mgr.AttachByIFD(argv[1]), SCM_S_OK, "AttachByIFD");
    AnswersKeepTheirSize(mgr);
    EmptyCommandIsInvalidArg(mgr);
    NothingThrows(mgr);
    CheckHr(mgr.Detach(), SCM_S_OK, "Detach");
    MoveAssignmentEmptiesTheSource(argv[1]);
    return Finish("hpp");
}
