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
 * Nothing throws: a manager that could not be created reports SCM_E_POINTER from every call
 * (and from Created()). Transmit and Atr fill a std::vector, which stays the caller's.
 * Link with the library as for C (`pkg-config --libs scardmanage`, or the CMake target
 * scardmanage::scardmanage).
 */

#ifndef SCARDMANAGE_HPP
#define SCARDMANAGE_HPP

#include <cstddef>
#include <cstdint>
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
            std::swap(m_, other.m_);
            std::swap(created_, other.created_);
        }
        return *this;
    }

    /* What creating the manager returned: SCM_S_OK, or why every call will fail. */
    scm_hresult Created() const { return created_; }

    /* The COM methods. */
    scm_hresult AttachByHandle(scm_hscard hICC) { return scm_attach_by_handle(m_, hICC); }
    scm_hresult AttachByIFD(const char *readerUtf8) { return scm_attach_by_ifd(m_, readerUtf8); }
    scm_hresult AttachByIFD(const uint16_t *readerUtf16) { return scm_attach_by_ifd_w(m_, readerUtf16); }
    scm_hresult Detach() { return scm_detach(m_); }
    scm_hresult Reconnect() { return scm_reconnect(m_); }
    scm_hresult SCardLock() { return scm_lock(m_); }
    scm_hresult SCardUnlock(uint32_t disposition) { return scm_unlock(m_, disposition); }
    scm_hresult Status(uint32_t *state, uint32_t *protocol) { return scm_status(m_, state, protocol); }

    /* Sends one APDU; on success `response` holds the answer, status word included. */
    scm_hresult Transmit(const std::vector<uint8_t> &command, std::vector<uint8_t> &response)
    {
        std::vector<uint8_t> answer(SCM_MAX_APDU_SIZE);
        size_t len = answer.size();
        const uint8_t *data = command.empty() ? nullptr : command.data();
        scm_hresult hr = scm_transmit(m_, data, command.size(), answer.data(), &len);
        if (SUCCEEDED(hr)) {
            answer.resize(len);
            response.swap(answer);
        }
        return hr;
    }

    /* The card's ATR. */
    scm_hresult Atr(std::vector<uint8_t> &atr)
    {
        uint8_t buffer[64];
        size_t len = sizeof buffer;
        scm_hresult hr = scm_get_atr(m_, buffer, &len);
        if (SUCCEEDED(hr))
            atr.assign(buffer, buffer + len);
        return hr;
    }

    /* The card handle in use (ISCard get_CardHandle); it stays the manager's. */
    scm_hresult CardHandle(scm_hscard *hICC) { return scm_get_handle(m_, hICC); }

    /* The C handle, for the scm_* functions this class does not wrap (the _ex variants). */
    scm_manage *get() const { return m_; }

private:
    void reset()
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
