/*
 * scardmanage for C++: the ISCardManage object model over the C ABI, header-only, C++11.
 *
 * scm::SCardManage owns one manager (created in the constructor, released in the destructor);
 * it can be moved, not copied. Its methods have the COM names and shapes and return the
 * HRESULT, so code ported from ISCardManage keeps its `hr = ...; if (FAILED(hr))` flow:
 *
 *     scm::SCardManage mgr;
 *     scm_hresult hr = mgr.AttachByIFD("My Reader 00 00");
 *     if (FAILED(hr)) std::fprintf(stderr, "%s\n", scm::ErrorMessage(hr));
 *
 * Nothing throws (every method is noexcept): a manager that could not be created, or was moved
 * from, reports SCM_E_POINTER from every call (and from Created()). Transmit and Atr fill a
 * std::vector, which stays the caller's; where they cannot allocate they return
 * SCM_E_OUTOFMEMORY (for Transmit the command was sent, but its answer is lost).
 * Link with the library as for C (`pkg-config --libs scardmanage`, or the CMake target
 * scardmanage::scardmanage).
 */

#ifndef SCARDMANAGE_HPP
#define SCARDMANAGE_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "scardmanage.h"

/* The COM test macros, for code ported from Windows; <winerror.h> has them too. */
#ifndef SUCCEEDED
#define SUCCEEDED(hr) (((scm_hresult)(hr)) >= 0)
#endif
#ifndef FAILED
#define FAILED(hr) (((scm_hresult)(hr)) < 0)
#endif

namespace scm {

/* A static English text for any result; never NULL, never to be freed. */
inline const char *ErrorMessage(scm_hresult hr) { return scm_error_message(hr); }

class SCardManage {
public:
    SCardManage() : m_(nullptr), created_(scm_create(&m_)) {}
    ~SCardManage() { reset(); }

    SCardManage(const SCardManage &) = delete;
    SCardManage &operator=(const SCardManage &) = delete;

    SCardManage(SCardManage &&other) noexcept : m_(other.m_), created_(other.created_)
    {
        other.m_ = nullptr;
        other.created_ = SCM_E_POINTER;
    }
    SCardManage &operator=(SCardManage &&other) noexcept
    {
        if (this != &other) {
            reset();
            m_ = other.m_;
            created_ = other.created_;
            // Emptied as by the move constructor, so that Created() explains its SCM_E_POINTER.
            other.m_ = nullptr;
            other.created_ = SCM_E_POINTER;
        }
        return *this;
    }

    /* What creating the manager returned: SCM_S_OK, or why every call will fail. */
    scm_hresult Created() const noexcept { return created_; }

    /* The COM methods. */
    scm_hresult AttachByHandle(scm_hscard hICC) noexcept { return scm_attach_by_handle(m_, hICC); }
    scm_hresult AttachByIFD(const char *readerUtf8) noexcept { return scm_attach_by_ifd(m_, readerUtf8); }
    scm_hresult AttachByIFD(const uint16_t *readerUtf16) noexcept { return scm_attach_by_ifd_w(m_, readerUtf16); }
    scm_hresult Detach() noexcept { return scm_detach(m_); }
    scm_hresult Reconnect() noexcept { return scm_reconnect(m_); }
    scm_hresult SCardLock() noexcept { return scm_lock(m_); }
    scm_hresult SCardUnlock(uint32_t disposition) noexcept { return scm_unlock(m_, disposition); }
    scm_hresult Status(uint32_t *state, uint32_t *protocol) noexcept { return scm_status(m_, state, protocol); }

    /* Sends one APDU; on success `response` holds the answer, status word included, and has
     * about its size (assigned, so a vector reused across calls keeps its own capacity). An
     * empty command is SCM_E_INVALIDARG, as in C. */
    scm_hresult Transmit(const std::vector<uint8_t> &command, std::vector<uint8_t> &response) noexcept
    {
        // vector::data() may be NULL when empty, which the library would answer SCM_E_POINTER.
        static const uint8_t no_command = 0;
        try {
            std::unique_ptr<uint8_t[]> answer(new uint8_t[SCM_MAX_APDU_SIZE]);
            size_t len = SCM_MAX_APDU_SIZE;
            scm_hresult hr = scm_transmit(m_, command.empty() ? &no_command : command.data(), command.size(),
                                          answer.get(), &len);
            if (SUCCEEDED(hr))
                response.assign(answer.get(), answer.get() + len);
            return hr;
        } catch (const std::bad_alloc &) {
            return SCM_E_OUTOFMEMORY;
        }
    }

    /* The card's ATR. */
    scm_hresult Atr(std::vector<uint8_t> &atr) noexcept
    {
        uint8_t buffer[64];
        size_t len = sizeof buffer;
        scm_hresult hr = scm_get_atr(m_, buffer, &len);
        if (SUCCEEDED(hr)) {
            try {
                atr.assign(buffer, buffer + len);
            } catch (const std::bad_alloc &) {
                return SCM_E_OUTOFMEMORY;
            }
        }
        return hr;
    }

    /* The card handle in use (ISCard get_CardHandle); it stays the manager's. */
    scm_hresult CardHandle(scm_hscard *hICC) noexcept { return scm_get_handle(m_, hICC); }

    /* The C handle, for the scm_* functions this class does not wrap (the _ex variants). */
    scm_manage *get() const noexcept { return m_; }

private:
    void reset() noexcept
    {
        if (m_ != nullptr)
            scm_release(m_);
        m_ = nullptr;
    }

    scm_manage *m_;
    scm_hresult created_;
};

}  // namespace scm

#endif /* SCARDMANAGE_HPP */
