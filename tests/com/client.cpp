// A C++ client of scardmanage_com.dll, as programs written against ISCardManage were: the header
// and GUIDs widl makes from the IDL (target/windows/<arch>/com/), CoCreateInstance by CLSID, the
// calls through the vtable, then the same calls through IDispatch::Invoke by DISPID, objects
// released in an unusual order, and DllCanUnloadNow honest about live objects. Run by
// .ci/test-com in a lab with the ISO card, the server registered first; SCM_LAB_READER names
// the reader. One line per check, `ok: ...` or `FAILED: ...`; the exit code is the number of
// failures.
#include <windows.h>
#include <ole2.h>
#include <oleauto.h>
#include <comdef.h>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <cwchar>

#include "scardmanage_com.h"

namespace {

constexpr HRESULT SCARD_E_UNKNOWN_READER_HR = static_cast<HRESULT>(0x80100009);
constexpr HRESULT SCARD_W_WRONG_CHV_HR = static_cast<HRESULT>(0x8010006B);
constexpr LONG STATE_SPECIFIC = 6;
constexpr LONG PROTOCOL_T1 = 2;
constexpr HRESULT SCM_E_HANDLE_HR = static_cast<HRESULT>(0x80070006);
// The ISO card's PIN: reference 1, DF-specific (SC_FL_IHV_LOCAL), so 0x81 on the card.
constexpr LONG PIN_REFERENCE = 1;
const SCARD_FLAGS PIN_FLAGS = static_cast<SCARD_FLAGS>(0x100);
constexpr int SC_TYPE_BY_ID_VALUE = 1;
// By value: the enumerations' member names are the IDL's business, their values WinSCard's.
const SCARD_SHARE_MODES SHARE_SHARED = static_cast<SCARD_SHARE_MODES>(2);
const SCARD_DISPOSITIONS LEAVE_CARD = static_cast<SCARD_DISPOSITIONS>(0);

// ISCardManage's DISPIDs, as the original shipped them (the issue and the IDL).
enum Dispid : DISPID {
    ID_ATTACH_BY_IFD = 2,
    ID_CREATE_FILE_ACCESS = 3,
    ID_CREATE_CHV_VERIFICATION = 5,
    ID_DETACH = 6,
    ID_SCARD_LOCK = 7,
    ID_RECONNECT = 8,
    ID_STATUS = 9,
    ID_SCARD_UNLOCK = 10,
};
// ISCardFileAccess's and ISCardVerify's (objects.idl: Microsoft's pages' order).
enum ObjectDispid : DISPID {
    ID_FILE_CLOSE = 2,
    ID_FILE_OPEN = 10,
    ID_FILE_READ = 11,
    ID_VERIFY = 4,
};

int failures = 0;

void check(bool passed, const char *format, ...)
{
    std::va_list args;
    va_start(args, format);
    std::printf("%s: client: ", passed ? "ok" : "FAILED");
    std::vprintf(format, args);
    std::printf("\n");
    va_end(args);
    std::fflush(stdout);
    failures += passed ? 0 : 1;
}

// A BSTR owned for one scope.
struct Bstr {
    BSTR value;
    explicit Bstr(const wchar_t *text) : value(SysAllocString(text)) {}
    ~Bstr() { SysFreeString(value); }
    Bstr(const Bstr &) = delete;
    Bstr &operator=(const Bstr &) = delete;
};

// The description the server set with SetErrorInfo for the last failure, as UTF-8 (empty when
// there is none). Takes the error object, as GetErrorInfo does.
void last_error_description(char *out, int size)
{
    out[0] = '\0';
    IErrorInfo *info = nullptr;
    if (GetErrorInfo(0, &info) != S_OK || !info) {
        return;
    }
    BSTR description = nullptr;
    if (SUCCEEDED(info->GetDescription(&description)) && description) {
        WideCharToMultiByte(CP_UTF8, 0, description, -1, out, size, nullptr, nullptr);
        SysFreeString(description);
    }
    info->Release();
}

// DllCanUnloadNow of the loaded server, called as COM calls it.
HRESULT can_unload_now()
{
    HMODULE dll = GetModuleHandleW(L"scardmanage_com.dll");
    auto entry = dll ? reinterpret_cast<HRESULT(STDAPICALLTYPE *)()>(
                           reinterpret_cast<void *>(GetProcAddress(dll, "DllCanUnloadNow")))
                     : nullptr;
    return entry ? entry() : E_UNEXPECTED;
}

// IDispatch::Invoke of a method by DISPID, arguments in call order (Invoke takes them reversed).
HRESULT invoke(IDispatch *object, DISPID id, VARIANT *args, UINT count, VARIANT *result, EXCEPINFO *error)
{
    VARIANT reversed[4];
    for (UINT i = 0; i < count; i++) {
        reversed[i] = args[count - 1 - i];
    }
    DISPPARAMS params = {count ? reversed : nullptr, nullptr, count, 0};
    EXCEPINFO ignored;
    UINT bad_argument = 0;
    return object->Invoke(id, IID_NULL, LOCALE_USER_DEFAULT, DISPATCH_METHOD, &params, result,
                          error ? error : &ignored, &bad_argument);
}

// A new byte buffer (the creatable CByteBuffer class) holding TEXT's bytes, or null.
IByteBuffer *code(const char *text)
{
    IByteBuffer *buffer = nullptr;
    HRESULT hr = CoCreateInstance(CLSID_CByteBuffer, nullptr, CLSCTX_INPROC_SERVER, IID_IByteBuffer,
                                  reinterpret_cast<void **>(&buffer));
    LONG written = 0;
    if (SUCCEEDED(hr)) {
        hr = buffer->Write(reinterpret_cast<BYTE *>(const_cast<char *>(text)), static_cast<LONG>(std::strlen(text)),
                           &written);
    }
    check(SUCCEEDED(hr) && written == static_cast<LONG>(std::strlen(text)),
          "CoCreateInstance(CLSID_CByteBuffer, IID_IByteBuffer), Write of %d bytes: 0x%08lX, %ld written",
          static_cast<int>(std::strlen(text)), hr, written);
    return SUCCEEDED(hr) ? buffer : nullptr;
}

void release(IUnknown *object)
{
    if (object) {
        object->Release();
    }
}

// The bytes of BUFFER from its start, into OUT (at most SIZE), or -1.
LONG buffer_bytes(IByteBuffer *buffer, BYTE *out, LONG size)
{
    LONG position = 0, read = 0;
    if (!buffer || FAILED(buffer->Seek(0, STREAM_SEEK_SET, &position)) || FAILED(buffer->Read(out, size, &read))) {
        return -1;
    }
    return read;
}

// Opens PATH (SC_TYPE_BY_ID), reads it whole and closes it, checking the bytes are EXPECTED.
void read_file(ISCardFileAccess *files, const wchar_t *path, const char *expected, const char *how)
{
    Bstr spec(path);
    LONG handle = 0, count = 256;
    HRESULT hr = files->Open(static_cast<REFTYPE>(SC_TYPE_BY_ID_VALUE), spec.value, &handle);
    check(hr == S_OK, "%s: ISCardFileAccess::Open(SC_TYPE_BY_ID, \"%ls\"): 0x%08lX, file %ld", how, path, hr, handle);
    IByteBuffer *data = nullptr;
    hr = files->Read(handle, &count, static_cast<SCARD_FLAGS>(0), &data);
    BYTE bytes[256];
    LONG length = buffer_bytes(data, bytes, sizeof bytes);
    LONG wanted = static_cast<LONG>(std::strlen(expected));
    check(hr == S_OK && count == wanted && length == wanted && std::memcmp(bytes, expected, wanted) == 0,
          "%s: ISCardFileAccess::Read: 0x%08lX, count %ld, the buffer's %ld bytes %s \"%s\"", how, hr, count, length,
          length == wanted && std::memcmp(bytes, expected, wanted) == 0 ? "are" : "are not", expected);
    release(data);
    hr = files->Close(handle);
    check(hr == S_OK, "%s: ISCardFileAccess::Close: 0x%08lX", how, hr);
}

// A new SCardManage object by its CLSID, asked for interface I by IID (named IID_NAME), checked.
template <class I> I *create_manager(REFIID iid, const char *iid_name, const char *how)
{
    I *object = nullptr;
    HRESULT hr =
        CoCreateInstance(CLSID_SCardManage, nullptr, CLSCTX_INPROC_SERVER, iid, reinterpret_cast<void **>(&object));
    check(hr == S_OK && object, "%s: CoCreateInstance(CLSID_SCardManage, %s): 0x%08lX", how, iid_name, hr);
    return object;
}

void through_the_vtable(const wchar_t *reader)
{
    auto *manager = create_manager<ISCardManage>(IID_ISCardManage, "IID_ISCardManage", "vtable");
    if (!manager) {
        return;
    }
    HRESULT hr;
    char description[512];
    Bstr name(reader);
    hr = manager->AttachByIFD(name.value, SHARE_SHARED);
    check(hr == S_OK, "vtable: AttachByIFD(SCM_LAB_READER, SHARED): 0x%08lX", hr);
    SCARD_STATES state = static_cast<SCARD_STATES>(0);
    SCARD_PROTOCOLS protocol = static_cast<SCARD_PROTOCOLS>(0);
    hr = manager->Status(&state, &protocol);
    check(hr == S_OK && state == STATE_SPECIFIC && protocol == PROTOCOL_T1,
          "vtable: Status: 0x%08lX, state %d, protocol %d (expected 6, 2 = T1)", hr, state, protocol);
    hr = manager->SCardLock();
    check(hr == S_OK, "vtable: SCardLock: 0x%08lX", hr);
    hr = manager->SCardUnlock(LEAVE_CARD);
    check(hr == S_OK, "vtable: SCardUnlock(LEAVE): 0x%08lX", hr);
    hr = manager->Reconnect();
    check(hr == S_OK, "vtable: Reconnect: 0x%08lX", hr);

    // A file of the ISO card read whole, its bytes checked through IByteBuffer's vtable; then a
    // wrong PIN, the right one, and the PIN-protected file.
    ISCardFileAccess *files = nullptr;
    hr = manager->CreateFileAccess(&files);
    check(hr == S_OK && files, "vtable: CreateFileAccess: 0x%08lX", hr);
    if (files) {
        read_file(files, L"3F00/5000/5001", "scardmanage ISO lab card: EF 5001", "vtable");
    }
    ISCardVerify *verify = nullptr;
    hr = manager->CreateCHVerification(&verify);
    check(hr == S_OK && verify, "vtable: CreateCHVerification: 0x%08lX", hr);
    if (verify) {
        IByteBuffer *wrong = code("9999"), *right = code("1234");
        hr = verify->Verify(wrong, PIN_FLAGS, PIN_REFERENCE);
        last_error_description(description, sizeof description);
        check(hr == SCARD_W_WRONG_CHV_HR && description[0],
              "vtable: ISCardVerify::Verify of a wrong PIN: 0x%08lX (expected 0x8010006B), GetErrorInfo: \"%s\"", hr,
              description);
        hr = verify->Verify(right, PIN_FLAGS, PIN_REFERENCE);
        check(hr == S_OK, "vtable: ISCardVerify::Verify of the right PIN: 0x%08lX", hr);
        release(wrong);
        release(right);
        verify->Release();
    }
    if (files) {
        read_file(files, L"3F00/5000/5004", "PIN-protected", "vtable, after the PIN");
        files->Release();
    }

    hr = manager->Detach();
    check(hr == S_OK, "vtable: Detach: 0x%08lX", hr);

    Bstr unknown(L"No Such Reader 00 00");
    hr = manager->AttachByIFD(unknown.value, SHARE_SHARED);
    last_error_description(description, sizeof description);
    check(hr == SCARD_E_UNKNOWN_READER_HR && description[0],
          "vtable: AttachByIFD of an unknown reader: 0x%08lX (expected 0x80100009), GetErrorInfo: \"%s\"", hr,
          description);
    // What a C++ client built with #import gets: its wrappers throw a _com_error made of the
    // HRESULT and the thread's error object, whose Description() is the server's message.
    hr = manager->AttachByIFD(unknown.value, SHARE_SHARED);
    IErrorInfo *info = nullptr;
    if (GetErrorInfo(0, &info) != S_OK) {
        info = nullptr;
    }
    _com_error error(hr, info, false);
    _bstr_t text = error.Description();
    const wchar_t *wide = static_cast<const wchar_t *>(text);
    check(error.Error() == SCARD_E_UNKNOWN_READER_HR && wide && std::wcsstr(wide, L"reader name is not recognized"),
          "vtable: _com_error of an unknown reader: Error() 0x%08lX, Description() \"%ls\"", error.Error(),
          wide ? wide : L"");
    ISupportErrorInfo *support = nullptr;
    hr = manager->QueryInterface(IID_ISupportErrorInfo, reinterpret_cast<void **>(&support));
    HRESULT supports = support ? support->InterfaceSupportsErrorInfo(IID_ISCardManage) : hr;
    check(supports == S_OK, "vtable: ISupportErrorInfo::InterfaceSupportsErrorInfo(IID_ISCardManage): 0x%08lX",
          supports);
    if (support) {
        support->Release();
    }
    ULONG left = manager->Release();
    check(left == 0, "vtable: the last Release returns 0 (%lu)", left);
}

void through_idispatch(const wchar_t *reader)
{
    auto *manager = create_manager<IDispatch>(IID_IDispatch, "IID_IDispatch", "IDispatch");
    if (!manager) {
        return;
    }
    HRESULT hr;
    // The reader only, as late-bound callers give it: the share mode is optional.
    VARIANT args[4];
    VariantInit(&args[0]);
    args[0].vt = VT_BSTR;
    args[0].bstrVal = SysAllocString(reader);
    hr = invoke(manager, ID_ATTACH_BY_IFD, args, 1, nullptr, nullptr);
    VariantClear(&args[0]);
    check(hr == S_OK, "IDispatch: Invoke(%d AttachByIFD, reader): 0x%08lX", ID_ATTACH_BY_IFD, hr);

    // Status's [out] parameters as C++ passes them (VT_BYREF|VT_I4) and as VBScript does
    // (VT_BYREF|VT_VARIANT).
    LONG state = 0, protocol = 0;
    args[0].vt = VT_BYREF | VT_I4;
    args[0].plVal = &state;
    args[1].vt = VT_BYREF | VT_I4;
    args[1].plVal = &protocol;
    hr = invoke(manager, ID_STATUS, args, 2, nullptr, nullptr);
    check(hr == S_OK && state == STATE_SPECIFIC && protocol == PROTOCOL_T1,
          "IDispatch: Invoke(%d Status, VT_BYREF|VT_I4 x2): 0x%08lX, state %ld, protocol %ld", ID_STATUS, hr, state,
          protocol);
    VARIANT state_variant, protocol_variant;
    VariantInit(&state_variant);
    VariantInit(&protocol_variant);
    args[0].vt = VT_BYREF | VT_VARIANT;
    args[0].pvarVal = &state_variant;
    args[1].vt = VT_BYREF | VT_VARIANT;
    args[1].pvarVal = &protocol_variant;
    hr = invoke(manager, ID_STATUS, args, 2, nullptr, nullptr);
    VARIANT as_long;
    VariantInit(&as_long);
    LONG variant_state = SUCCEEDED(VariantChangeType(&as_long, &state_variant, 0, VT_I4)) ? as_long.lVal : -1;
    LONG variant_protocol = SUCCEEDED(VariantChangeType(&as_long, &protocol_variant, 0, VT_I4)) ? as_long.lVal : -1;
    check(hr == S_OK && variant_state == STATE_SPECIFIC && variant_protocol == PROTOCOL_T1,
          "IDispatch: Invoke(%d Status, VT_BYREF|VT_VARIANT x2): 0x%08lX, state %ld, protocol %ld", ID_STATUS, hr,
          variant_state, variant_protocol);
    VariantClear(&state_variant);
    VariantClear(&protocol_variant);

    hr = invoke(manager, ID_SCARD_LOCK, nullptr, 0, nullptr, nullptr);
    check(hr == S_OK, "IDispatch: Invoke(%d SCardLock): 0x%08lX", ID_SCARD_LOCK, hr);
    args[0].vt = VT_I4;
    args[0].lVal = 0;
    hr = invoke(manager, ID_SCARD_UNLOCK, args, 1, nullptr, nullptr);
    check(hr == S_OK, "IDispatch: Invoke(%d SCardUnlock, 0 = LEAVE): 0x%08lX", ID_SCARD_UNLOCK, hr);
    hr = invoke(manager, ID_RECONNECT, nullptr, 0, nullptr, nullptr);
    check(hr == S_OK, "IDispatch: Invoke(%d Reconnect): 0x%08lX", ID_RECONNECT, hr);

    // The objects through IDispatch as well: CreateFileAccess's [out, retval] is Invoke's result.
    VARIANT created;
    VariantInit(&created);
    hr = invoke(manager, ID_CREATE_FILE_ACCESS, nullptr, 0, &created, nullptr);
    check(hr == S_OK && created.vt == VT_DISPATCH && created.pdispVal,
          "IDispatch: Invoke(%d CreateFileAccess): 0x%08lX, the result a VT_DISPATCH (vt %d)", ID_CREATE_FILE_ACCESS, hr,
          created.vt);
    if (hr == S_OK && created.vt == VT_DISPATCH && created.pdispVal) {
        IDispatch *files = created.pdispVal;
        LONG handle = 0, count = 256;
        args[0].vt = VT_I4;
        args[0].lVal = SC_TYPE_BY_ID_VALUE;
        args[1].vt = VT_BSTR;
        args[1].bstrVal = SysAllocString(L"3F00/5000/5001");
        args[2].vt = VT_BYREF | VT_I4;
        args[2].plVal = &handle;
        hr = invoke(files, ID_FILE_OPEN, args, 3, nullptr, nullptr);
        VariantClear(&args[1]);
        check(hr == S_OK, "IDispatch: ISCardFileAccess Invoke(%d Open, SC_TYPE_BY_ID, \"3F00/5000/5001\", "
              "VT_BYREF|VT_I4): 0x%08lX, file %ld", ID_FILE_OPEN, hr, handle);
        VARIANT data;
        VariantInit(&data);
        args[0].vt = VT_I4;
        args[0].lVal = handle;
        args[1].vt = VT_BYREF | VT_I4;
        args[1].plVal = &count;
        args[2].vt = VT_I4;
        args[2].lVal = 0;
        args[3].vt = VT_BYREF | VT_VARIANT;
        args[3].pvarVal = &data;
        hr = invoke(files, ID_FILE_READ, args, 4, nullptr, nullptr);
        IByteBuffer *buffer = nullptr;
        if ((data.vt == VT_DISPATCH || data.vt == VT_UNKNOWN) && data.punkVal) {
            data.punkVal->QueryInterface(IID_IByteBuffer, reinterpret_cast<void **>(&buffer));
        }
        BYTE bytes[256];
        const char *expected = "scardmanage ISO lab card: EF 5001";
        LONG length = buffer_bytes(buffer, bytes, sizeof bytes);
        bool same = length == 33 && std::memcmp(bytes, expected, 33) == 0;
        check(hr == S_OK && count == 33 && same,
              "IDispatch: ISCardFileAccess Invoke(%d Read, file, VT_BYREF|VT_I4, 0, VT_BYREF|VT_VARIANT): 0x%08lX, "
              "count %ld, an IByteBuffer whose %ld bytes %s \"%s\"",
              ID_FILE_READ, hr, count, length, same ? "are" : "are not", expected);
        release(buffer);
        VariantClear(&data);
        args[0].vt = VT_I4;
        args[0].lVal = handle;
        hr = invoke(files, ID_FILE_CLOSE, args, 1, nullptr, nullptr);
        check(hr == S_OK, "IDispatch: ISCardFileAccess Invoke(%d Close): 0x%08lX", ID_FILE_CLOSE, hr);
    }
    VariantClear(&created);

    // A wrong PIN through Invoke: DISP_E_EXCEPTION carrying SCARD_W_WRONG_CHV and the message.
    hr = invoke(manager, ID_CREATE_CHV_VERIFICATION, nullptr, 0, &created, nullptr);
    check(hr == S_OK && created.vt == VT_DISPATCH && created.pdispVal,
          "IDispatch: Invoke(%d CreateCHVerification): 0x%08lX, the result a VT_DISPATCH (vt %d)",
          ID_CREATE_CHV_VERIFICATION, hr, created.vt);
    IByteBuffer *wrong = code("9999");
    IDispatch *wrong_dispatch = nullptr;
    if (wrong) {
        wrong->QueryInterface(IID_IDispatch, reinterpret_cast<void **>(&wrong_dispatch));
    }
    if (hr == S_OK && created.vt == VT_DISPATCH && created.pdispVal && wrong_dispatch) {
        args[0].vt = VT_DISPATCH;
        args[0].pdispVal = wrong_dispatch;
        args[1].vt = VT_I4;
        args[1].lVal = PIN_FLAGS;
        args[2].vt = VT_I4;
        args[2].lVal = PIN_REFERENCE;
        EXCEPINFO error = {};
        hr = invoke(created.pdispVal, ID_VERIFY, args, 3, nullptr, &error);
        char text[512] = "";
        if (error.bstrDescription) {
            WideCharToMultiByte(CP_UTF8, 0, error.bstrDescription, -1, text, sizeof text, nullptr, nullptr);
        }
        check(hr == DISP_E_EXCEPTION && error.scode == SCARD_W_WRONG_CHV_HR && text[0],
              "IDispatch: ISCardVerify Invoke(%d Verify, a wrong PIN): 0x%08lX, EXCEPINFO scode 0x%08lX "
              "(expected 0x8010006B), description \"%s\"", ID_VERIFY, hr, error.scode, text);
        SysFreeString(error.bstrDescription);
        SysFreeString(error.bstrSource);
        SysFreeString(error.bstrHelpFile);
    }
    release(wrong_dispatch);
    release(wrong);
    VariantClear(&created);

    hr = invoke(manager, ID_DETACH, nullptr, 0, nullptr, nullptr);
    check(hr == S_OK, "IDispatch: Invoke(%d Detach): 0x%08lX", ID_DETACH, hr);

    args[0].vt = VT_BSTR;
    args[0].bstrVal = SysAllocString(L"No Such Reader 00 00");
    EXCEPINFO error = {};
    hr = invoke(manager, ID_ATTACH_BY_IFD, args, 1, nullptr, &error);
    VariantClear(&args[0]);
    char description[512] = "";
    if (error.bstrDescription) {
        WideCharToMultiByte(CP_UTF8, 0, error.bstrDescription, -1, description, sizeof description, nullptr, nullptr);
    }
    check(hr == DISP_E_EXCEPTION && error.scode == SCARD_E_UNKNOWN_READER_HR && description[0],
          "IDispatch: Invoke(%d AttachByIFD, unknown reader): 0x%08lX (expected DISP_E_EXCEPTION 0x80020009), "
          "EXCEPINFO scode 0x%08lX (expected 0x80100009), description \"%s\"",
          ID_ATTACH_BY_IFD, hr, error.scode, description);
    SysFreeString(error.bstrDescription);
    SysFreeString(error.bstrSource);
    SysFreeString(error.bstrHelpFile);
    ULONG left = manager->Release();
    check(left == 0, "IDispatch: the last Release returns 0 (%lu)", left);
}

// Objects released in an unusual order: the manager first, its file access after, the file
// access still used in between; DllCanUnloadNow answers S_FALSE while any object lives, S_OK
// once none does.
void release_order(const wchar_t *reader)
{
    auto *manager = create_manager<ISCardManage>(IID_ISCardManage, "IID_ISCardManage", "release order");
    if (!manager) {
        return;
    }
    Bstr name(reader);
    HRESULT hr = manager->AttachByIFD(name.value, SHARE_SHARED);
    ISCardFileAccess *files = nullptr;
    HRESULT created = manager->CreateFileAccess(&files);
    check(hr == S_OK && created == S_OK && files, "release order: AttachByIFD 0x%08lX, CreateFileAccess 0x%08lX", hr,
          created);
    HRESULT alive = can_unload_now();
    check(alive == S_FALSE, "release order: DllCanUnloadNow with a manager and a file access alive: 0x%08lX (S_FALSE)",
          alive);
    // The count left is the server's business (the file access may hold the manager); that
    // nothing leaks shows in DllCanUnloadNow at the end.
    ULONG left = manager->Release();
    alive = can_unload_now();
    check(alive == S_FALSE,
          "release order: the manager released first (Release returned %lu); DllCanUnloadNow with the file access "
          "outliving it: 0x%08lX (S_FALSE)", left, alive);
    if (files) {
        // Either the file access kept the manager's token alive (the read works) or it answers
        // SCM_E_HANDLE; never a crash.
        Bstr spec(L"3F00/5000/5001");
        LONG handle = 0;
        hr = files->Open(static_cast<REFTYPE>(SC_TYPE_BY_ID_VALUE), spec.value, &handle);
        check(hr == S_OK || hr == SCM_E_HANDLE_HR,
              "release order: Open on the file access after its manager's release: 0x%08lX (S_OK or SCM_E_HANDLE)", hr);
        left = files->Release();
        check(left == 0, "release order: the file access released last (%lu left)", left);
    }
    HRESULT unload = can_unload_now();
    check(unload == S_OK, "release order: DllCanUnloadNow once every object is released: 0x%08lX (S_OK)", unload);
    CoFreeUnusedLibraries();
}

// An IByteBuffer of the caller's own that lies about its size: Seek to the end says 2 GiB - 1,
// Read gives nothing. The server must not trust the size (a 2 GiB allocation, which aborts a
// 32-bit process when it fails) nor read what was not given. Lives on the stack: Release does
// not delete.
class LyingBuffer : public IByteBuffer {
    LONG references = 1;

  public:
    LONG reads = 0;
    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID iid, void **out) override
    {
        if (!out) {
            return E_POINTER;
        }
        *out = nullptr;
        if (!IsEqualIID(iid, IID_IUnknown) && !IsEqualIID(iid, IID_IDispatch) && !IsEqualIID(iid, IID_IByteBuffer)) {
            return E_NOINTERFACE;
        }
        *out = static_cast<IByteBuffer *>(this);
        AddRef();
        return S_OK;
    }
    ULONG STDMETHODCALLTYPE AddRef() override { return InterlockedIncrement(&references); }
    ULONG STDMETHODCALLTYPE Release() override { return InterlockedDecrement(&references); }
    HRESULT STDMETHODCALLTYPE GetTypeInfoCount(UINT *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE GetTypeInfo(UINT, LCID, ITypeInfo **) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE GetIDsOfNames(REFIID, LPOLESTR *, UINT, LCID, DISPID *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Invoke(DISPID, REFIID, LCID, WORD, DISPPARAMS *, VARIANT *, EXCEPINFO *, UINT *) override
    {
        return E_NOTIMPL;
    }
    HRESULT STDMETHODCALLTYPE get_Stream(IStream **) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE put_Stream(IStream *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Clone(LPBYTEBUFFER *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Commit(LONG) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE CopyTo(LPBYTEBUFFER *, LONG, LONG *, LONG *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Initialize(LONG, BYTE *) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE LockRegion(LONG, LONG, LONG) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Read(BYTE *, LONG, LONG *read) override
    {
        reads++;
        if (read) {
            *read = 0;
        }
        return S_OK;
    }
    HRESULT STDMETHODCALLTYPE Revert() override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Seek(LONG, LONG origin, LONG *position) override
    {
        if (position) {
            *position = origin == STREAM_SEEK_END ? 0x7FFFFFFF : 0;
        }
        return S_OK;
    }
    HRESULT STDMETHODCALLTYPE SetSize(LONG) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Stat(STATSTRUCT *, LONG) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE UnlockRegion(LONG, LONG, LONG) override { return E_NOTIMPL; }
    HRESULT STDMETHODCALLTYPE Write(BYTE *, LONG, LONG *) override { return E_NOTIMPL; }
};

// What a careless or hostile caller passes: NULL out-pointers, sizes near 2 GiB, a buffer that
// lies, by-reference arguments that refer to nothing, and GetErrorInfo asked after a failure
// that set none. Each is answered by an HRESULT: no crash, no huge allocation, no leaked
// object (DllCanUnloadNow), no earlier call's error information.
void hostile_callers(const wchar_t *reader)
{
    constexpr HRESULT STG_E_MEDIUMFULL_HR = static_cast<HRESULT>(0x80030070);
    IByteBuffer *buffer = code("");
    if (!buffer) {
        return;
    }
    HRESULT hr = buffer->Clone(nullptr);
    check(hr == E_POINTER, "hostile: IByteBuffer::Clone(NULL): 0x%08lX (E_POINTER)", hr);
    hr = buffer->SetSize(0x7FFFFFFF);
    STATSTRUCT stat = {};
    HRESULT stated = buffer->Stat(&stat, 0);
    check(hr == STG_E_MEDIUMFULL_HR && stated == S_OK && stat.cbSize == 0,
          "hostile: IByteBuffer::SetSize(2 GiB - 1): 0x%08lX (STG_E_MEDIUMFULL), the size still %ld", hr, stat.cbSize);
    hr = buffer->Initialize(0x7FFFFFFF, nullptr);
    check(hr == STG_E_MEDIUMFULL_HR, "hostile: IByteBuffer::Initialize(2 GiB - 1, NULL): 0x%08lX (STG_E_MEDIUMFULL)", hr);
    LONG position = 0, written = -1;
    BYTE byte = 0x41;
    hr = buffer->Seek(0x7FFFFFFE, STREAM_SEEK_SET, &position);
    HRESULT wrote = buffer->Write(&byte, 1, &written);
    check(hr == S_OK && wrote == STG_E_MEDIUMFULL_HR,
          "hostile: IByteBuffer::Seek to 2 GiB - 2: 0x%08lX, then Write of 1 byte: 0x%08lX (STG_E_MEDIUMFULL)", hr, wrote);
    LONG read = -1;
    hr = buffer->Read(nullptr, 0, &read);
    check(hr == S_OK && read == 0, "hostile: IByteBuffer::Read(NULL, 0): 0x%08lX, %ld read", hr, read);

    // Late bound: Initialize's size the same; a VT_BYREF byte array referring to no variable.
    IDispatch *dispatch = nullptr;
    buffer->QueryInterface(IID_IDispatch, reinterpret_cast<void **>(&dispatch));
    VARIANT args[1];
    args[0].vt = VT_I4;
    args[0].lVal = 0x7FFFFFFF;
    EXCEPINFO error = {};
    hr = dispatch ? invoke(dispatch, 5, args, 1, nullptr, &error) : E_NOINTERFACE;
    check(hr == DISP_E_EXCEPTION && error.scode == STG_E_MEDIUMFULL_HR,
          "hostile: IByteBuffer Invoke(5 Initialize, 2 GiB - 1): 0x%08lX, EXCEPINFO scode 0x%08lX (STG_E_MEDIUMFULL)", hr,
          error.scode);
    SysFreeString(error.bstrDescription);
    SysFreeString(error.bstrSource);
    SysFreeString(error.bstrHelpFile);

    // A failure that sets error information, then one reported by its HRESULT alone (a wrong
    // argument count), or a success through Invoke: GetErrorInfo has nothing after either.
    auto *manager = create_manager<ISCardManage>(IID_ISCardManage, "IID_ISCardManage", "hostile");
    IDispatch *late = nullptr;
    if (manager) {
        manager->QueryInterface(IID_IDispatch, reinterpret_cast<void **>(&late));
    }
    if (late) {
        Bstr unknown(L"No Such Reader 00 00");
        manager->AttachByIFD(unknown.value, SHARE_SHARED);
        args[0].vt = VT_I4;
        args[0].lVal = 0;
        hr = invoke(late, ID_STATUS, args, 1, nullptr, nullptr);
        IErrorInfo *info = nullptr;
        HRESULT got = GetErrorInfo(0, &info);
        check(hr == DISP_E_BADPARAMCOUNT && got == S_FALSE,
              "hostile: after a failed AttachByIFD, Invoke(%d Status, 1 argument): 0x%08lX (DISP_E_BADPARAMCOUNT), "
              "GetErrorInfo 0x%08lX (S_FALSE: no stale error information)", ID_STATUS, hr, got);
        release(info);
        info = nullptr;
        manager->AttachByIFD(unknown.value, SHARE_SHARED);
        hr = dispatch ? invoke(dispatch, 3, nullptr, 0, nullptr, nullptr) : E_NOINTERFACE;
        got = GetErrorInfo(0, &info);
        check(hr == S_OK && got == S_FALSE,
              "hostile: after a failed AttachByIFD, IByteBuffer Invoke(3 Commit): 0x%08lX, GetErrorInfo 0x%08lX (S_FALSE)",
              hr, got);
        release(info);
    }

    // A PIN in a buffer of the caller's that claims 2 GiB - 1 bytes: refused before the card
    // is asked, and before a byte is read from it.
    Bstr name(reader);
    ISCardVerify *verify = nullptr;
    hr = manager ? manager->AttachByIFD(name.value, SHARE_SHARED) : E_POINTER;
    if (hr == S_OK) {
        hr = manager->CreateCHVerification(&verify);
    }
    check(hr == S_OK && verify, "hostile: AttachByIFD and CreateCHVerification: 0x%08lX", hr);
    if (verify) {
        LyingBuffer liar;
        hr = verify->Verify(&liar, PIN_FLAGS, PIN_REFERENCE);
        check(hr == STG_E_MEDIUMFULL_HR && liar.reads == 0,
              "hostile: ISCardVerify::Verify of a buffer claiming 2 GiB - 1 bytes: 0x%08lX (STG_E_MEDIUMFULL), %ld "
              "Read calls (0)", hr, liar.reads);
        verify->Release();
    }
    release(late);
    release(manager);
    release(dispatch);
    buffer->Release();
    HRESULT unload = can_unload_now();
    check(unload == S_OK, "hostile: DllCanUnloadNow once every object is released: 0x%08lX (S_OK: nothing leaked)",
          unload);

    // Last, as without its fix it is a crash: Invoke Write with VT_BYREF|VT_ARRAY|VT_UI1 whose
    // reference is NULL.
    buffer = code("");
    dispatch = nullptr;
    if (buffer) {
        buffer->QueryInterface(IID_IDispatch, reinterpret_cast<void **>(&dispatch));
    }
    if (dispatch) {
        args[0].vt = VT_BYREF | VT_ARRAY | VT_UI1;
        args[0].pparray = nullptr;
        hr = invoke(dispatch, 13, args, 1, nullptr, nullptr);
        check(hr == DISP_E_TYPEMISMATCH,
              "hostile: IByteBuffer Invoke(13 Write, VT_BYREF|VT_ARRAY|VT_UI1 referring to NULL): 0x%08lX "
              "(DISP_E_TYPEMISMATCH)", hr);
        dispatch->Release();
    }
    release(buffer);
}

} // namespace

int main()
{
    wchar_t reader[256];
    DWORD length = GetEnvironmentVariableW(L"SCM_LAB_READER", reader, 256);
    if (length == 0 || length >= 256) {
        check(false, "SCM_LAB_READER is not set: run under scm-lab");
        return failures;
    }
    HRESULT hr = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
    check(hr == S_OK, "CoInitializeEx(COINIT_MULTITHREADED): 0x%08lX", hr);
    through_the_vtable(reader);
    through_idispatch(reader);
    release_order(reader);
    hostile_callers(reader);
    CoUninitialize();
    return failures;
}
