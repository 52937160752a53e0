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
 * Nothing throws (every function here is noexcept): a manager that could not be created, or was
 * moved from, reports SCM_E_POINTER from every call (and from Created()). Transmit and Atr fill
 * a std::vector, which stays the caller's; where they cannot allocate they return
 * SCM_E_OUTOFMEMORY. For Transmit that is either before the command is sent (its 64 KiB scratch)
 * or after (the answer's vector): then the command was sent and its answer is lost.
 * Link with the library as for C (`pkg-config --libs scardmanage`, or the CMake target
 * scardmanage::scardmanage).
 *
 * The factories (COM Create*) fill RAII objects, FileAccess, CHVerification and CardAuth, each
 * owning one token of its C type and ending it with that type's _release in its destructor (or
 * Release()); they are moved, never copied, and an empty one (default-constructed, moved from,
 * released) reports SCM_E_POINTER from every call. They refer to their manager, not to a card
 * connection: they follow it through Reconnect and answer SCM_E_HANDLE once it is released.
 * Monitor watches every reader of the system (scm_monitor_*). Methods that return bytes fill a
 * std::vector, as Transmit does, and return SCM_E_OUTOFMEMORY where they cannot allocate.
 */

#ifndef SCARDMANAGE_HPP
#define SCARDMANAGE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
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
inline const char *ErrorMessage(scm_hresult hr) noexcept { return scm_error_message(hr); }

/* The IIDs CreateInterface takes, in GUID memory order (ABI.md). */
const uint8_t IID_ISCardFileAccess[16] = {0x8A, 0xDD, 0x29, 0x40, 0x02, 0x59, 0xD0, 0x11,
                                          0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9};
const uint8_t IID_ISCardVerify[16] = {0x85, 0xDD, 0x29, 0x40, 0x02, 0x59, 0xD0, 0x11,
                                      0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9};
const uint8_t IID_ISCardAuth[16] = {0x61, 0x3D, 0x06, 0x7B, 0x40, 0x6E, 0xD0, 0x11,
                                    0xB8, 0x58, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9};

class SCardManage;

namespace detail {

/* Up to `capacity` bytes into `out`: `send(scratch, &len)`, then `out` assigned (so it has about
 * the answer's size) only on success. Without memory for the scratch nothing is sent; without
 * memory for `out` the answer is lost. */
template <class Send>
scm_hresult Answer(std::vector<uint8_t> &out, size_t capacity, Send send) noexcept
{
    try {
        std::unique_ptr<uint8_t[]> scratch(new uint8_t[capacity == 0 ? 1 : capacity]);
        size_t len = capacity;
        scm_hresult hr = send(scratch.get(), &len);
        if (SUCCEEDED(hr))
            out.assign(scratch.get(), scratch.get() + len);
        return hr;
    } catch (const std::bad_alloc &) {
        return SCM_E_OUTOFMEMORY;
    }
}

/* The buffer rules: `call(NULL, &len)` asks for the size, then the fetch into `out`, asked again
 * while the size grew in between. */
template <class Call>
scm_hresult Fetch(std::vector<uint8_t> &out, Call call) noexcept
{
    try {
        size_t len = 0;
        scm_hresult hr = call(nullptr, &len);
        std::vector<uint8_t> buffer;
        while (SUCCEEDED(hr)) {
            buffer.resize(len == 0 ? 1 : len);
            len = buffer.size();
            hr = call(buffer.data(), &len);
            if (hr != SCM_SCARD_E_INSUFFICIENT_BUFFER)
                break;
        }
        if (SUCCEEDED(hr)) {
            buffer.resize(len);
            out.swap(buffer);
        }
        return hr;
    } catch (const std::bad_alloc &) {
        return SCM_E_OUTOFMEMORY;
    }
}

/* A text under the buffer rules, without its NUL. */
template <class Call>
scm_hresult FetchText(std::string &out, Call call) noexcept
{
    std::vector<uint8_t> bytes;
    scm_hresult hr = Fetch(bytes, call);
    if (SUCCEEDED(hr)) {
        try {
            out.assign(bytes.begin(), bytes.end() - (bytes.empty() ? 0 : 1));
        } catch (const std::bad_alloc &) {
            return SCM_E_OUTOFMEMORY;
        }
    }
    return hr;
}

/* vector::data() may be NULL when empty, which the library would answer SCM_E_POINTER. */
inline const uint8_t *Bytes(const std::vector<uint8_t> &v) noexcept
{
    static const uint8_t none = 0;
    return v.empty() ? &none : v.data();
}

/* One token of type T, ended by Release; moved, never copied. */
template <class T, scm_hresult (*ReleaseFn)(T *)>
class Owned {
public:
    typedef T element_type;

    Owned() noexcept : p_(nullptr) {}
    ~Owned() { Release(); }
    Owned(const Owned &) = delete;
    Owned &operator=(const Owned &) = delete;
    Owned(Owned &&other) noexcept : p_(other.p_) { other.p_ = nullptr; }
    Owned &operator=(Owned &&other) noexcept
    {
        if (this != &other) {
            Release();
            std::swap(p_, other.p_);
        }
        return *this;
    }

    /* Ends the object now (COM Release) and returns what its _release returned; the object is
     * empty afterwards (SCM_E_POINTER from an empty one). */
    scm_hresult Release() noexcept
    {
        T *p = p_;
        p_ = nullptr;
        return p == nullptr ? SCM_E_POINTER : ReleaseFn(p);
    }

    /* The C token, for the scm_* functions this class does not wrap. */
    T *get() const noexcept { return p_; }

protected:
    friend class scm::SCardManage;
    T *p_;
};

/* A token CreateInterface made that is not the kind asked for: each kind's _release refuses the
 * others' tokens (SCM_E_HANDLE), so the one of its kind ends it. */
inline void ReleaseAnyInterface(void *made) noexcept
{
    if (FAILED(scm_file_access_release(static_cast<scm_file_access *>(made))) &&
        FAILED(scm_chv_release(static_cast<scm_chv *>(made))))
        scm_auth_release(static_cast<scm_auth *>(made));
}

inline bool Names(const uint8_t *iid, const char *name, const uint8_t (&own_iid)[16], const char *own_name) noexcept
{
    return iid != nullptr ? std::memcmp(iid, own_iid, 16) == 0 : name != nullptr && std::strcmp(name, own_name) == 0;
}

}  // namespace detail

/* ISCardFileAccess over ISO 7816-4 files. A file is designated by a reference type
 * (SCM_REF_BY_NAME, SCM_REF_BY_ID, SCM_REF_BY_SHORT_ID) and a name (hex digits; see the C header). */
class FileAccess : public detail::Owned<scm_file_access, scm_file_access_release> {
public:
    static bool Names(const uint8_t *iid, const char *name) noexcept
    {
        return detail::Names(iid, name, IID_ISCardFileAccess, "FileAccess");
    }

    scm_hresult ChangeDir(uint32_t ref, const char *name) noexcept { return scm_file_change_dir(p_, ref, name); }
    scm_hresult GetCurrentDir(std::string &path) noexcept
    {
        scm_file_access *f = p_;
        return detail::FetchText(path, [f](uint8_t *buf, size_t *len) {
            return scm_file_get_current_dir(f, reinterpret_cast<char *>(buf), len);
        });
    }
    scm_hresult Open(uint32_t ref, const char *name, uint32_t *file) noexcept { return scm_file_open(p_, ref, name, file); }
    /* Reads up to `count` bytes from the file's position into `data` (resized to what was read;
     * SCARD_W_EOF, with `data` empty, when the read starts at the end). */
    scm_hresult Read(uint32_t file, size_t count, std::vector<uint8_t> &data, uint32_t flags = 0) noexcept
    {
        scm_file_access *f = p_;
        scm_hresult hr = detail::Answer(data, count, [f, file, flags](uint8_t *buf, size_t *len) {
            return scm_file_read(f, file, buf, len, flags);
        });
        // The one failure that reads: nothing (*len 0). Left as it was, `data` would hold the
        // previous read's bytes for a caller that looks at it rather than at the code.
        if (hr == SCM_SCARD_W_EOF)
            data.clear();
        return hr;
    }
    scm_hresult Write(uint32_t file, const std::vector<uint8_t> &data, uint32_t flags = 0) noexcept
    {
        return scm_file_write(p_, file, detail::Bytes(data), data.size(), flags);
    }
    scm_hresult Seek(uint32_t file, uint32_t origin, int64_t offset, uint64_t *position) noexcept
    {
        return scm_file_seek(p_, file, origin, offset, position);
    }
    scm_hresult Close(uint32_t file) noexcept { return scm_file_close(p_, file); }
    scm_hresult GetProperties(uint32_t ref, const char *name, uint32_t flags, std::vector<uint8_t> &fcp) noexcept
    {
        scm_file_access *f = p_;
        return detail::Fetch(fcp, [f, ref, name, flags](uint8_t *buf, size_t *len) {
            return scm_file_get_properties(f, ref, name, flags, buf, len);
        });
    }
    scm_hresult Create(uint32_t ref, const char *name, const std::vector<uint8_t> &fcp, uint32_t flags = 0) noexcept
    {
        return scm_file_create(p_, ref, name, detail::Bytes(fcp), fcp.size(), flags);
    }
    scm_hresult Delete(uint32_t ref, const char *name, uint32_t flags = 0) noexcept
    {
        return scm_file_delete(p_, ref, name, flags);
    }
    /* DEACTIVATE FILE and ACTIVATE FILE. */
    scm_hresult Invalidate(uint32_t ref, const char *name, uint32_t flags = 0) noexcept
    {
        return scm_file_invalidate(p_, ref, name, flags);
    }
    scm_hresult Rehabilitate(uint32_t ref, const char *name, uint32_t flags = 0) noexcept
    {
        return scm_file_rehabilitate(p_, ref, name, flags);
    }
};

/* ISCardVerify: card holder verification. A wrong code is SCM_SCARD_W_WRONG_CHV with the tries
 * left written (SCM_TRIES_UNKNOWN when the card does not say), a blocked one
 * SCM_SCARD_W_CHV_BLOCKED with 0 written (triesLeft may be NULL). The codes stay the caller's to
 * wipe. */
class CHVerification : public detail::Owned<scm_chv, scm_chv_release> {
public:
    static bool Names(const uint8_t *iid, const char *name) noexcept
    {
        return detail::Names(iid, name, IID_ISCardVerify, "CHVerification");
    }

    scm_hresult Verify(uint32_t reference, const uint8_t *code, size_t len, uint32_t flags, uint32_t *triesLeft) noexcept
    {
        return scm_chv_verify(p_, reference, code, len, flags, triesLeft);
    }
    scm_hresult ChangeCode(uint32_t reference, const uint8_t *oldCode, size_t oldLen, const uint8_t *newCode,
                           size_t newLen, uint32_t flags = 0, uint32_t *triesLeft = nullptr) noexcept
    {
        return scm_chv_change_code(p_, reference, oldCode, oldLen, newCode, newLen, flags, triesLeft);
    }
    scm_hresult Unblock(uint32_t reference, const uint8_t *unblockCode, size_t unblockLen, const uint8_t *newCode,
                        size_t newLen, uint32_t flags = 0, uint32_t *triesLeft = nullptr) noexcept
    {
        return scm_chv_unblock(p_, reference, unblockCode, unblockLen, newCode, newLen, flags, triesLeft);
    }
    scm_hresult ResetSecurityState() noexcept { return scm_chv_reset_security_state(p_); }
    scm_hresult GetTriesLeft(uint32_t reference, uint32_t *triesLeft) noexcept
    {
        return scm_chv_get_tries_left(p_, reference, triesLeft);
    }
};

/* ISCardAuth: GET CHALLENGE, INTERNAL AUTHENTICATE (the card proves a key), EXTERNAL
 * AUTHENTICATE (this side proves one). */
class CardAuth : public detail::Owned<scm_auth, scm_auth_release> {
public:
    static bool Names(const uint8_t *iid, const char *name) noexcept
    {
        return detail::Names(iid, name, IID_ISCardAuth, "CardAuth");
    }

    scm_hresult GetChallenge(size_t count, std::vector<uint8_t> &challenge) noexcept
    {
        scm_auth *a = p_;
        return detail::Answer(challenge, count, [a](uint8_t *buf, size_t *len) { return scm_auth_get_challenge(a, buf, len); });
    }
    scm_hresult InternalAuthenticate(uint32_t algorithm, uint32_t key, const std::vector<uint8_t> &data,
                                     std::vector<uint8_t> &response) noexcept
    {
        scm_auth *a = p_;
        return detail::Answer(response, SCM_MAX_APDU_SIZE, [a, algorithm, key, &data](uint8_t *buf, size_t *len) {
            return scm_auth_icc_auth(a, algorithm, key, detail::Bytes(data), data.size(), buf, len);
        });
    }
    scm_hresult ExternalAuthenticate(uint32_t algorithm, uint32_t key, const std::vector<uint8_t> &data) noexcept
    {
        return scm_auth_app_auth(p_, algorithm, key, detail::Bytes(data), data.size());
    }
    /* COM UserAuth: VERIFY with the user's code, as CHVerification::Verify. */
    scm_hresult UserAuthenticate(uint32_t reference, const uint8_t *code, size_t len, uint32_t *triesLeft) noexcept
    {
        return scm_auth_user_auth(p_, reference, code, len, triesLeft);
    }
};

/* Every reader of the system: SCM_EVENT_READER_ADDED, _READER_REMOVED, _CARD_INSERTED,
 * _CARD_REMOVED with the reader's name; the first events report what is already there. Cancel
 * may be called from any thread; Next from one at a time. */
class Monitor : public detail::Owned<scm_monitor, scm_monitor_release> {
public:
    Monitor() noexcept : created_(scm_monitor_create(&p_)) {}

    /* What creating the monitor returned: SCM_S_OK, or why every call will fail. */
    scm_hresult Created() const noexcept { return created_; }

    /* The next event, waiting up to timeoutMs (SCM_WAIT_INFINITE: no end): SCM_SCARD_E_TIMEOUT
     * when that passed, SCM_SCARD_E_CANCELLED when Cancel ended the wait. */
    scm_hresult Next(uint32_t timeoutMs, uint32_t *event, std::string &reader) noexcept
    {
        try {
            std::vector<char> name(512);  // PC/SC's reader names are far shorter
            size_t len = name.size();
            scm_hresult hr = scm_monitor_next(p_, timeoutMs, event, name.data(), &len);
            // The event is kept when the name does not fit: fetched again with room for it.
            while (hr == SCM_SCARD_E_INSUFFICIENT_BUFFER) {
                name.resize(len);
                hr = scm_monitor_next(p_, timeoutMs, event, name.data(), &len);
            }
            if (SUCCEEDED(hr))
                reader.assign(name.data(), len - 1);
            return hr;
        } catch (const std::bad_alloc &) {
            return SCM_E_OUTOFMEMORY;
        }
    }
    scm_hresult Cancel() noexcept { return scm_monitor_cancel(p_); }

private:
    scm_hresult created_;
};

class SCardManage {
public:
    SCardManage() noexcept : m_(nullptr), created_(scm_create(&m_)) {}
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
        scm_manage *m = m_;
        return detail::Answer(response, SCM_MAX_APDU_SIZE, [m, &command](uint8_t *buf, size_t *len) {
            return scm_transmit(m, detail::Bytes(command), command.size(), buf, len);
        });
    }

    /* Transmit with the library's ISO 7816 help (scm_transmit_ex): SCM_ISO_GET_RESPONSE,
     * SCM_ISO_FIX_LE, SCM_ISO_CHAIN or SCM_ISO_ALL. */
    scm_hresult TransmitEx(uint32_t flags, const std::vector<uint8_t> &command, std::vector<uint8_t> &response) noexcept
    {
        scm_manage *m = m_;
        return detail::Answer(response, SCM_MAX_APDU_SIZE, [m, flags, &command](uint8_t *buf, size_t *len) {
            return scm_transmit_ex(m, flags, detail::Bytes(command), command.size(), buf, len);
        });
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

    /* Blocks until the attached reader's card changes since the manager last looked, or
     * timeoutMs passes (SCM_WAIT_INFINITE: no end; then SCM_SCARD_E_TIMEOUT); writes the COM
     * state now. Cancel (from another thread) ends it with SCM_SCARD_E_CANCELLED. */
    scm_hresult WaitForChange(uint32_t timeoutMs, uint32_t *state) noexcept
    {
        return scm_wait_for_change(m_, timeoutMs, state);
    }
    scm_hresult Cancel() noexcept { return scm_cancel(m_); }

    /* Reader attributes (SCM_ATTR_*); text attributes are UTF-8 with their NUL. */
    scm_hresult GetAttrib(uint32_t attribute, std::vector<uint8_t> &value) noexcept
    {
        scm_manage *m = m_;
        return detail::Fetch(value, [m, attribute](uint8_t *buf, size_t *len) { return scm_get_attrib(m, attribute, buf, len); });
    }
    scm_hresult SetAttrib(uint32_t attribute, const std::vector<uint8_t> &value) noexcept
    {
        return scm_set_attrib(m_, attribute, detail::Bytes(value), value.size());
    }

    /* SCardControl: a code up to 0xFFFF is the portable SCARD_CTL_CODE(code). */
    scm_hresult Control(uint32_t code, const std::vector<uint8_t> &in, std::vector<uint8_t> &out) noexcept
    {
        scm_manage *m = m_;
        return detail::Answer(out, SCM_MAX_APDU_SIZE, [m, code, &in](uint8_t *buf, size_t *len) {
            return scm_control(m, code, detail::Bytes(in), in.size(), buf, len);
        });
    }
    /* The native control code of a PC/SC part 10 feature (SCM_FEATURE_*), for Control. */
    scm_hresult GetFeature(uint32_t tag, uint32_t *controlCode) noexcept { return scm_get_feature(m_, tag, controlCode); }

    /* The factories (COM Create*): `out` owns the new object (its old one, if any, released). */
    scm_hresult CreateFileAccess(FileAccess &out) noexcept { return Create(scm_create_file_access, out); }
    scm_hresult CreateCHVerification(CHVerification &out) noexcept
    {
        return Create(scm_create_chv_verification, out);
    }
    scm_hresult CreateCardAuth(CardAuth &out) noexcept { return Create(scm_create_card_auth, out); }

    /* COM CreateInterface by IID (scm::IID_ISCard*, GUID memory order) or, with iid NULL, by name
     * ("FileAccess", "CHVerification", "CardAuth"), into the object of that kind. Anything else the
     * library does not make is its SCM_E_NOTIMPL; an IID or name of another kind than T is
     * SCM_E_INVALIDARG (the object made is released). */
    template <class T>
    scm_hresult CreateInterface(const uint8_t *iid, const char *name, T &out) noexcept
    {
        void *made = nullptr;
        scm_hresult hr = scm_create_interface(m_, iid, name, &made);
        if (FAILED(hr))
            return hr;
        if (!T::Names(iid, name)) {
            detail::ReleaseAnyInterface(made);
            return SCM_E_INVALIDARG;
        }
        out.Release();
        out.p_ = static_cast<typename T::element_type *>(made);
        return hr;
    }

    /* The C handle, for the scm_* functions this class does not wrap (the _ex variants). */
    scm_manage *get() const noexcept { return m_; }

private:
    void reset() noexcept
    {
        if (m_ != nullptr)
            scm_release(m_);
        m_ = nullptr;
    }

    template <class T>
    scm_hresult Create(scm_hresult (*factory)(scm_manage *, typename T::element_type **), T &out) noexcept
    {
        typename T::element_type *made = nullptr;
        scm_hresult hr = factory(m_, &made);
        if (SUCCEEDED(hr)) {
            out.Release();
            out.p_ = made;
        }
        return hr;
    }

    scm_manage *m_;
    scm_hresult created_;
};

}  // namespace scm

#endif /* SCARDMANAGE_HPP */
