/*
 * winscard.dll for the scardmanage lab under Wine: WinSCard as Microsoft documents it, served
 * by the lab's real pcscd. Wine 8.0's own winscard.dll is a stub.
 *
 * Every call is relayed over loopback TCP (the address is in SCM_LAB_BRIDGE) to the relay in
 * the lab's Linux process (lab/src/bridge.rs, which documents the wire protocol and does the
 * translation of codes, protocols and states). This side keeps what only a Windows process can
 * do: ANSI (CP_ACP) and UTF-16 names, the caller's buffers (SCARD_AUTOALLOCATE,
 * SCardFreeMemory, length queries), handles of its own, and the PCI data exports.
 *
 * Concurrency: each context has a TCP connection of its own, used under the context's lock,
 * and the relay serves each connection from a thread of its own, so a call that blocks in
 * pcscd blocks only the callers of that context. SCardCancel goes over a fresh connection of
 * its own, since the context's is busy with the call it cancels.
 */
#define WINSCARDDATA /* defined here, not imported */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <winscard.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_ESTABLISH = 1,
    OP_RELEASE,
    OP_IS_VALID,
    OP_LIST_READERS,
    OP_LIST_GROUPS,
    OP_CONNECT,
    OP_RECONNECT,
    OP_DISCONNECT,
    OP_BEGIN,
    OP_END,
    OP_STATUS,
    OP_STATUS_CHANGE,
    OP_CANCEL,
    OP_TRANSMIT,
    OP_CONTROL,
    OP_GET_ATTRIB,
    OP_SET_ATTRIB,
};

const SCARD_IO_REQUEST g_rgSCardT0Pci = { SCARD_PROTOCOL_T0, sizeof(SCARD_IO_REQUEST) };
const SCARD_IO_REQUEST g_rgSCardT1Pci = { SCARD_PROTOCOL_T1, sizeof(SCARD_IO_REQUEST) };
const SCARD_IO_REQUEST g_rgSCardRawPci = { SCARD_PROTOCOL_RAW, sizeof(SCARD_IO_REQUEST) };

/* Handles are tag | generation << 12 | slot: a released handle (its slot's generation has
 * moved on), a card handle given as a context or a forged value is refused, never reused. */
#define MAX_CONTEXTS 256
#define MAX_CARDS 1024
#define CONTEXT_TAG 0x10000000u
#define CARD_TAG 0x20000000u

typedef struct {
    BOOL used;
    WORD generation;
    SOCKET sock;
    UINT64 cancel_token;
    CRITICAL_SECTION call; /* held for a whole call on `sock` */
} context_t;

typedef struct {
    BOOL used;
    WORD generation;
    SCARDCONTEXT context;
    UINT64 remote; /* pcsc-lite's handle */
} card_t;

static context_t contexts[MAX_CONTEXTS];
static card_t cards[MAX_CARDS];
static CRITICAL_SECTION table; /* slot allocation, cards, the started event */
static INIT_ONCE init_once = INIT_ONCE_STATIC_INIT;
static HANDLE started_event;
static LONG started_refs;

static BOOL CALLBACK init(PINIT_ONCE once, PVOID parameter, PVOID *context)
{
    WSADATA wsa;
    (void)once, (void)parameter, (void)context;
    InitializeCriticalSection(&table);
    for (int i = 0; i < MAX_CONTEXTS; i++)
        InitializeCriticalSection(&contexts[i].call);
    /* A failure shows as SCARD_E_NO_SERVICE at the first connection. */
    WSAStartup(MAKEWORD(2, 2), &wsa);
    return TRUE;
}

static void ensure_init(void)
{
    InitOnceExecuteOnce(&init_once, init, NULL, NULL);
}

static ULONG_PTR make_handle(DWORD tag, WORD generation, DWORD slot)
{
    return tag | ((DWORD)generation << 12) | slot;
}

static BOOL split_handle(ULONG_PTR handle, DWORD tag, DWORD slots, WORD *generation, DWORD *slot)
{
    if (handle != (DWORD)handle || (handle & 0xF0000000u) != tag)
        return FALSE;
    *generation = (WORD)(handle >> 12);
    *slot = handle & 0xFFF;
    return *slot < slots;
}

/* ---- frames ---- */

typedef struct {
    BYTE *data;
    size_t len, cap;
    BOOL failed;
} request_t;

typedef struct {
    const BYTE *p;
    size_t left;
} reply_t;

static void put(request_t *r, const void *p, size_t n)
{
    if (r->failed)
        return;
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2 + 64;
        BYTE *data = realloc(r->data, cap);
        if (!data) {
            r->failed = TRUE;
            return;
        }
        r->data = data;
        r->cap = cap;
    }
    memcpy(r->data + r->len, p, n);
    r->len += n;
}

static void put_u32(request_t *r, DWORD v)
{
    put(r, &v, 4); /* x86 is little-endian, as the wire is */
}

static void put_u64(request_t *r, UINT64 v)
{
    put(r, &v, 8);
}

static void put_bytes(request_t *r, const void *p, size_t n)
{
    put_u32(r, (DWORD)n);
    put(r, p, n);
}

static void put_str(request_t *r, const char *utf8)
{
    put_bytes(r, utf8, strlen(utf8));
}

static const BYTE *take(reply_t *r, size_t n)
{
    const BYTE *p = r->p;
    if (r->left < n)
        return NULL;
    r->p += n;
    r->left -= n;
    return p;
}

/* Reads an n-byte little-endian integer into *v; a short reply reads as 0. */
static void get_int(reply_t *r, void *v, size_t n)
{
    const BYTE *p = take(r, n);
    if (p)
        memcpy(v, p, n);
    else
        memset(v, 0, n);
}

static DWORD get_u32(reply_t *r)
{
    DWORD v;
    get_int(r, &v, sizeof v);
    return v;
}

static UINT64 get_u64(reply_t *r)
{
    UINT64 v;
    get_int(r, &v, sizeof v);
    return v;
}

static const BYTE *get_bytes(reply_t *r, DWORD *n)
{
    const BYTE *p;
    *n = get_u32(r);
    p = take(r, *n);
    if (!p)
        *n = 0;
    return p;
}

static BOOL send_all(SOCKET s, const BYTE *p, size_t n)
{
    while (n > 0) {
        int sent = send(s, (const char *)p, n > 0x10000000 ? 0x10000000 : (int)n, 0);
        if (sent <= 0)
            return FALSE;
        p += sent;
        n -= (size_t)sent;
    }
    return TRUE;
}

static BOOL recv_all(SOCKET s, BYTE *p, size_t n)
{
    while (n > 0) {
        int got = recv(s, (char *)p, n > 0x10000000 ? 0x10000000 : (int)n, 0);
        if (got <= 0)
            return FALSE;
        p += got;
        n -= (size_t)got;
    }
    return TRUE;
}

/* A connection to the relay, or INVALID_SOCKET. */
static SOCKET dial(void)
{
    char address[64], *colon;
    struct sockaddr_in to;
    SOCKET s;
    BOOL nodelay = TRUE;
    DWORD n = GetEnvironmentVariableA("SCM_LAB_BRIDGE", address, sizeof address);
    if (n == 0 || n >= sizeof address || !(colon = strrchr(address, ':')))
        return INVALID_SOCKET;
    *colon = 0;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((u_short)atoi(colon + 1));
    if (inet_pton(AF_INET, address, &to.sin_addr) != 1)
        return INVALID_SOCKET;
    s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET)
        return s;
    /* Requests are single writes answered at once: Nagle would only add delay. */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&nodelay, sizeof nodelay);
    if (connect(s, (struct sockaddr *)&to, sizeof to) != 0) {
        closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

/* One call in progress: the request being built, then the reply being read. */
typedef struct {
    context_t *context; /* locked, or NULL for a call on a connection of its own */
    SOCKET sock;
    request_t request;
    BYTE *memory;
    reply_t reply;
} call_t;

static void start(call_t *k, SOCKET sock, DWORD op)
{
    memset(k, 0, sizeof *k);
    k->sock = sock;
    put_u32(&k->request, 0); /* the frame length, filled in by run() */
    put_u32(&k->request, op);
}

/* Sends the request and reads the reply; returns the reply's code. A relay that cannot be
 * reached (the lab is gone) is SCARD_E_NO_SERVICE, as a stopped service is on Windows. */
static LONG run(call_t *k)
{
    DWORD length;
    if (k->request.failed)
        return SCARD_E_NO_MEMORY;
    length = (DWORD)(k->request.len - 4);
    memcpy(k->request.data, &length, 4);
    if (k->sock == INVALID_SOCKET || !send_all(k->sock, k->request.data, k->request.len)
        || !recv_all(k->sock, (BYTE *)&length, 4))
        return SCARD_E_NO_SERVICE;
    k->memory = malloc(length ? length : 1);
    if (!k->memory)
        return SCARD_E_NO_MEMORY;
    if (!recv_all(k->sock, k->memory, length))
        return SCARD_E_NO_SERVICE;
    k->reply.p = k->memory;
    k->reply.left = length;
    return (LONG)get_u32(&k->reply);
}

static void finish(call_t *k)
{
    free(k->request.data);
    free(k->memory);
    if (k->context)
        LeaveCriticalSection(&k->context->call);
}

/* Locks the context behind `handle` and starts a call on its connection. */
static LONG start_on_context(call_t *k, SCARDCONTEXT handle, DWORD op)
{
    WORD generation;
    DWORD slot;
    context_t *c;
    ensure_init();
    if (!split_handle(handle, CONTEXT_TAG, MAX_CONTEXTS, &generation, &slot))
        return SCARD_E_INVALID_HANDLE;
    c = &contexts[slot];
    EnterCriticalSection(&c->call);
    /* Checked under the call lock, which a release holds while it retires the slot. */
    if (!c->used || c->generation != generation) {
        LeaveCriticalSection(&c->call);
        return SCARD_E_INVALID_HANDLE;
    }
    start(k, c->sock, op);
    k->context = c;
    return SCARD_S_SUCCESS;
}

/* Starts a call on the connection of the context a card handle belongs to. */
static LONG start_on_card(call_t *k, SCARDHANDLE handle, DWORD op)
{
    WORD generation;
    DWORD slot;
    SCARDCONTEXT context = 0;
    UINT64 remote = 0;
    LONG rv;
    ensure_init();
    if (!split_handle(handle, CARD_TAG, MAX_CARDS, &generation, &slot))
        return SCARD_E_INVALID_HANDLE;
    EnterCriticalSection(&table);
    if (cards[slot].used && cards[slot].generation == generation) {
        context = cards[slot].context;
        remote = cards[slot].remote;
    }
    LeaveCriticalSection(&table);
    if (!context)
        return SCARD_E_INVALID_HANDLE;
    rv = start_on_context(k, context, op);
    if (rv == SCARD_S_SUCCESS)
        put_u64(&k->request, remote);
    return rv;
}

/* ---- strings and the caller's buffers ---- */

static WCHAR *wide_from(UINT codepage, const char *s, int n, int *units)
{
    int count = MultiByteToWideChar(codepage, 0, s, n, NULL, 0);
    WCHAR *w = malloc(sizeof(WCHAR) * (count + 1));
    if (!w)
        return NULL;
    MultiByteToWideChar(codepage, 0, s, n, w, count);
    w[count] = 0;
    if (units)
        *units = count;
    return w;
}

static char *narrow_from(UINT codepage, const WCHAR *w, int n, int *units)
{
    int count = WideCharToMultiByte(codepage, 0, w, n, NULL, 0, NULL, NULL);
    char *s = malloc(count + 1);
    if (!s)
        return NULL;
    WideCharToMultiByte(codepage, 0, w, n, s, count, NULL, NULL);
    s[count] = 0;
    if (units)
        *units = count;
    return s;
}

/* A caller's name as the UTF-8 the relay carries: from UTF-16 (W) or the ANSI code page (A). */
static char *utf8_from_caller(const void *name, BOOL wide)
{
    char *utf8;
    WCHAR *w;
    if (!name)
        return NULL;
    if (wide)
        return narrow_from(CP_UTF8, name, -1, NULL);
    w = wide_from(CP_ACP, name, -1, NULL);
    utf8 = w ? narrow_from(CP_UTF8, w, -1, NULL) : NULL;
    free(w);
    return utf8;
}

/* One UTF-8 string of the relay in the caller's form: UTF-16 units (W) or CP_ACP bytes (A),
 * written at `out` (if not NULL); returns the units it takes, without a terminator. */
static DWORD caller_form(const BYTE *utf8, DWORD n, BOOL wide, BYTE *out)
{
    int units = 0;
    WCHAR *w = wide_from(CP_UTF8, (const char *)utf8, (int)n, &units);
    DWORD result = 0;
    if (!w || n == 0) {
        free(w);
        return 0;
    }
    if (wide) {
        if (out)
            memcpy(out, w, units * sizeof(WCHAR));
        result = (DWORD)units;
    } else {
        /* Characters outside the code page become its default character, as on Windows. */
        int bytes = WideCharToMultiByte(CP_ACP, 0, w, units, (char *)out, out ? 0x7FFFFFFF : 0, NULL, NULL);
        result = (DWORD)bytes;
    }
    free(w);
    return result;
}

/* The relay's `strs` as a double-NUL-terminated multi-string in the caller's form; *units is
 * its length in characters, terminators included. */
static BYTE *multi_string(reply_t *reply, BOOL wide, DWORD *units)
{
    size_t unit = wide ? sizeof(WCHAR) : 1;
    DWORD count = get_u32(reply), total = 0, i, n;
    reply_t again = *reply;
    BYTE *buffer, *at;
    for (i = 0; i < count; i++) {
        const BYTE *s = get_bytes(reply, &n);
        total += caller_form(s, n, wide, NULL) + 1;
    }
    total += 1;
    if (count == 0)
        total = 2;
    buffer = calloc(total, unit);
    if (!buffer)
        return NULL;
    at = buffer;
    for (i = 0; i < count; i++) {
        const BYTE *s = get_bytes(&again, &n);
        at += (caller_form(s, n, wide, at) + 1) * unit;
    }
    *units = total;
    return buffer;
}

/* Gives `count` units of `data` to the caller as WinSCard does: with `out` NULL only the
 * length; with *pcount SCARD_AUTOALLOCATE a buffer for SCardFreeMemory, its address stored at
 * `out`; else a copy if *pcount is large enough. *pcount is the length needed in every case. */
static LONG deliver(const void *data, DWORD count, size_t unit, void *out, LPDWORD pcount)
{
    if (!pcount)
        return SCARD_E_INVALID_PARAMETER;
    if (!out) {
        *pcount = count;
        return SCARD_S_SUCCESS;
    }
    if (*pcount == SCARD_AUTOALLOCATE) {
        void *memory = HeapAlloc(GetProcessHeap(), 0, count > 0 ? count * unit : 1);
        if (!memory)
            return SCARD_E_NO_MEMORY;
        memcpy(memory, data, count * unit);
        *(void **)out = memory;
        *pcount = count;
        return SCARD_S_SUCCESS;
    }
    if (*pcount < count) {
        *pcount = count;
        return SCARD_E_INSUFFICIENT_BUFFER;
    }
    memcpy(out, data, count * unit);
    *pcount = count;
    return SCARD_S_SUCCESS;
}

/* ---- contexts ---- */

LONG WINAPI SCardEstablishContext(DWORD scope, LPCVOID reserved1, LPCVOID reserved2, LPSCARDCONTEXT context)
{
    call_t k;
    LONG rv;
    UINT64 token;
    int slot;
    (void)reserved1, (void)reserved2;
    ensure_init();
    if (!context)
        return SCARD_E_INVALID_PARAMETER;
    start(&k, dial(), OP_ESTABLISH);
    put_u32(&k.request, scope);
    rv = run(&k);
    token = get_u64(&k.reply);
    finish(&k);
    if (rv != SCARD_S_SUCCESS) {
        if (k.sock != INVALID_SOCKET)
            closesocket(k.sock);
        return rv;
    }
    EnterCriticalSection(&table);
    for (slot = 0; slot < MAX_CONTEXTS && contexts[slot].used; slot++)
        ;
    if (slot < MAX_CONTEXTS)
        contexts[slot].used = TRUE;
    LeaveCriticalSection(&table);
    if (slot == MAX_CONTEXTS) {
        closesocket(k.sock); /* the relay releases the context with its connection */
        return SCARD_E_NO_MEMORY;
    }
    EnterCriticalSection(&contexts[slot].call);
    contexts[slot].sock = k.sock;
    contexts[slot].cancel_token = token;
    *context = make_handle(CONTEXT_TAG, contexts[slot].generation, (DWORD)slot);
    LeaveCriticalSection(&contexts[slot].call);
    return SCARD_S_SUCCESS;
}

LONG WINAPI SCardReleaseContext(SCARDCONTEXT context)
{
    call_t k;
    LONG rv = start_on_context(&k, context, OP_RELEASE);
    context_t *c = k.context;
    if (rv != SCARD_S_SUCCESS)
        return rv;
    rv = run(&k);
    closesocket(c->sock);
    c->sock = INVALID_SOCKET;
    c->generation++;
    EnterCriticalSection(&table);
    c->used = FALSE;
    /* The context's card handles die with it, as on Windows. */
    for (int i = 0; i < MAX_CARDS; i++) {
        if (cards[i].used && cards[i].context == context) {
            cards[i].used = FALSE;
            cards[i].generation++;
        }
    }
    LeaveCriticalSection(&table);
    finish(&k);
    /* A lab that has gone away has released it too. */
    return rv == SCARD_E_NO_SERVICE ? SCARD_S_SUCCESS : rv;
}

LONG WINAPI SCardIsValidContext(SCARDCONTEXT context)
{
    call_t k;
    LONG rv = start_on_context(&k, context, OP_IS_VALID);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    rv = run(&k);
    finish(&k);
    return rv;
}

LONG WINAPI SCardCancel(SCARDCONTEXT context)
{
    WORD generation;
    DWORD slot;
    UINT64 token = 0;
    BOOL valid;
    call_t k;
    LONG rv;
    ensure_init();
    if (!split_handle(context, CONTEXT_TAG, MAX_CONTEXTS, &generation, &slot))
        return SCARD_E_INVALID_HANDLE;
    /* Not under the context's call lock: the call to cancel holds it. */
    EnterCriticalSection(&table);
    valid = contexts[slot].used && contexts[slot].generation == generation;
    if (valid)
        token = contexts[slot].cancel_token;
    LeaveCriticalSection(&table);
    if (!valid)
        return SCARD_E_INVALID_HANDLE;
    start(&k, dial(), OP_CANCEL);
    put_u64(&k.request, token);
    rv = run(&k);
    finish(&k);
    if (k.sock != INVALID_SOCKET)
        closesocket(k.sock);
    return rv;
}

/* The readers or groups in the caller's form. With no context, WinSCard uses one of its own. */
static LONG list(SCARDCONTEXT context, DWORD op, BOOL wide, void *out, LPDWORD pcount)
{
    call_t k;
    LONG rv;
    BYTE *names;
    DWORD units = 0;
    if (!pcount)
        return SCARD_E_INVALID_PARAMETER;
    if (!context) {
        SCARDCONTEXT own;
        rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &own);
        if (rv == SCARD_S_SUCCESS) {
            rv = list(own, op, wide, out, pcount);
            SCardReleaseContext(own);
        }
        return rv;
    }
    rv = start_on_context(&k, context, op);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    rv = run(&k);
    if (rv == SCARD_S_SUCCESS) {
        names = multi_string(&k.reply, wide, &units);
        rv = names ? deliver(names, units, wide ? sizeof(WCHAR) : 1, out, pcount) : SCARD_E_NO_MEMORY;
        free(names);
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardListReadersA(SCARDCONTEXT context, LPCSTR groups, LPSTR readers, LPDWORD length)
{
    (void)groups; /* every reader is in the default group, as with pcsc-lite */
    return list(context, OP_LIST_READERS, FALSE, readers, length);
}

LONG WINAPI SCardListReadersW(SCARDCONTEXT context, LPCWSTR groups, LPWSTR readers, LPDWORD length)
{
    (void)groups;
    return list(context, OP_LIST_READERS, TRUE, readers, length);
}

LONG WINAPI SCardListReaderGroupsA(SCARDCONTEXT context, LPSTR groups, LPDWORD length)
{
    return list(context, OP_LIST_GROUPS, FALSE, groups, length);
}

LONG WINAPI SCardListReaderGroupsW(SCARDCONTEXT context, LPWSTR groups, LPDWORD length)
{
    return list(context, OP_LIST_GROUPS, TRUE, groups, length);
}

LONG WINAPI SCardFreeMemory(SCARDCONTEXT context, LPCVOID memory)
{
    (void)context;
    if (memory)
        HeapFree(GetProcessHeap(), 0, (void *)memory);
    return SCARD_S_SUCCESS;
}

/* The lab's resource manager is running whenever a program runs in it. */
HANDLE WINAPI SCardAccessStartedEvent(void)
{
    HANDLE event;
    ensure_init();
    EnterCriticalSection(&table);
    if (!started_event)
        started_event = CreateEventW(NULL, TRUE, TRUE, NULL);
    if (started_event)
        started_refs++;
    event = started_event;
    LeaveCriticalSection(&table);
    return event;
}

void WINAPI SCardReleaseStartedEvent(void)
{
    ensure_init();
    EnterCriticalSection(&table);
    if (started_refs > 0 && --started_refs == 0) {
        CloseHandle(started_event);
        started_event = NULL;
    }
    LeaveCriticalSection(&table);
}

/* ---- cards ---- */

static LONG connect_reader(SCARDCONTEXT context, const void *reader, BOOL wide, DWORD share, DWORD protocols,
                           LPSCARDHANDLE card, LPDWORD active)
{
    call_t k;
    LONG rv;
    UINT64 remote;
    DWORD protocol;
    int slot;
    char *name;
    if (!reader || !card)
        return SCARD_E_INVALID_PARAMETER;
    name = utf8_from_caller(reader, wide);
    if (!name)
        return SCARD_E_NO_MEMORY;
    rv = start_on_context(&k, context, OP_CONNECT);
    if (rv != SCARD_S_SUCCESS) {
        free(name);
        return rv;
    }
    put_str(&k.request, name);
    put_u32(&k.request, share);
    put_u32(&k.request, protocols);
    free(name);
    rv = run(&k);
    remote = get_u64(&k.reply);
    protocol = get_u32(&k.reply);
    if (rv == SCARD_S_SUCCESS) {
        EnterCriticalSection(&table);
        for (slot = 0; slot < MAX_CARDS && cards[slot].used; slot++)
            ;
        if (slot < MAX_CARDS) {
            cards[slot].used = TRUE;
            cards[slot].context = context;
            cards[slot].remote = remote;
            *card = make_handle(CARD_TAG, cards[slot].generation, (DWORD)slot);
            if (active)
                *active = protocol;
        } else {
            rv = SCARD_E_NO_MEMORY;
        }
        LeaveCriticalSection(&table);
        /* Out of slots, pcsc-lite's handle stays unused until the context is released. */
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardConnectA(SCARDCONTEXT context, LPCSTR reader, DWORD share, DWORD protocols, LPSCARDHANDLE card,
                          LPDWORD active)
{
    return connect_reader(context, reader, FALSE, share, protocols, card, active);
}

LONG WINAPI SCardConnectW(SCARDCONTEXT context, LPCWSTR reader, DWORD share, DWORD protocols, LPSCARDHANDLE card,
                          LPDWORD active)
{
    return connect_reader(context, reader, TRUE, share, protocols, card, active);
}

LONG WINAPI SCardReconnect(SCARDHANDLE card, DWORD share, DWORD protocols, DWORD initialization, LPDWORD active)
{
    call_t k;
    DWORD protocol;
    LONG rv = start_on_card(&k, card, OP_RECONNECT);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, share);
    put_u32(&k.request, protocols);
    put_u32(&k.request, initialization);
    rv = run(&k);
    protocol = get_u32(&k.reply);
    if (rv == SCARD_S_SUCCESS && active)
        *active = protocol;
    finish(&k);
    return rv;
}

LONG WINAPI SCardDisconnect(SCARDHANDLE card, DWORD disposition)
{
    call_t k;
    LONG rv = start_on_card(&k, card, OP_DISCONNECT);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, disposition);
    rv = run(&k);
    /* The handle is gone whatever pcscd said (a restarted pcscd no longer knows it). */
    EnterCriticalSection(&table);
    cards[card & 0xFFF].used = FALSE;
    cards[card & 0xFFF].generation++;
    LeaveCriticalSection(&table);
    finish(&k);
    return rv;
}

static LONG card_call(SCARDHANDLE card, DWORD op, BOOL with_disposition, DWORD disposition)
{
    call_t k;
    LONG rv = start_on_card(&k, card, op);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    if (with_disposition)
        put_u32(&k.request, disposition);
    rv = run(&k);
    finish(&k);
    return rv;
}

LONG WINAPI SCardBeginTransaction(SCARDHANDLE card)
{
    return card_call(card, OP_BEGIN, FALSE, 0);
}

LONG WINAPI SCardEndTransaction(SCARDHANDLE card, DWORD disposition)
{
    return card_call(card, OP_END, TRUE, disposition);
}

static LONG status(SCARDHANDLE card, BOOL wide, void *names, LPDWORD names_length, LPDWORD state,
                   LPDWORD protocol, LPBYTE atr, LPDWORD atr_length)
{
    call_t k;
    BYTE *multi;
    DWORD units = 0, n;
    const BYTE *bytes;
    LONG rv = start_on_card(&k, card, OP_STATUS);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    rv = run(&k);
    if (rv == SCARD_S_SUCCESS) {
        multi = multi_string(&k.reply, wide, &units);
        if (state)
            *state = get_u32(&k.reply);
        else
            get_u32(&k.reply);
        if (protocol)
            *protocol = get_u32(&k.reply);
        else
            get_u32(&k.reply);
        bytes = get_bytes(&k.reply, &n);
        if (!multi)
            rv = SCARD_E_NO_MEMORY;
        else if (names_length)
            rv = deliver(multi, units, wide ? sizeof(WCHAR) : 1, names, names_length);
        else if (names)
            rv = SCARD_E_INVALID_PARAMETER;
        if (rv == SCARD_S_SUCCESS && atr_length)
            rv = deliver(bytes, n, 1, atr, atr_length);
        else if (rv == SCARD_S_SUCCESS && atr)
            rv = SCARD_E_INVALID_PARAMETER;
        free(multi);
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardStatusA(SCARDHANDLE card, LPSTR names, LPDWORD names_length, LPDWORD state, LPDWORD protocol,
                         LPBYTE atr, LPDWORD atr_length)
{
    return status(card, FALSE, names, names_length, state, protocol, atr, atr_length);
}

LONG WINAPI SCardStatusW(SCARDHANDLE card, LPWSTR names, LPDWORD names_length, LPDWORD state, LPDWORD protocol,
                         LPBYTE atr, LPDWORD atr_length)
{
    return status(card, TRUE, names, names_length, state, protocol, atr, atr_length);
}

LONG WINAPI SCardState(SCARDHANDLE card, LPDWORD state, LPDWORD protocol, LPBYTE atr, LPDWORD atr_length)
{
    return status(card, FALSE, NULL, NULL, state, protocol, atr, atr_length);
}

/* SCARD_READERSTATEA and SCARD_READERSTATEW differ only in the type of szReader. */
static LONG status_change(SCARDCONTEXT context, DWORD timeout, SCARD_READERSTATEA *states, DWORD count, BOOL wide)
{
    call_t k;
    DWORD i, n;
    LONG rv;
    if (count && !states)
        return SCARD_E_INVALID_PARAMETER;
    rv = start_on_context(&k, context, OP_STATUS_CHANGE);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, timeout);
    put_u32(&k.request, count);
    for (i = 0; i < count; i++) {
        char *name = utf8_from_caller(states[i].szReader, wide);
        put_str(&k.request, name ? name : "");
        put_u32(&k.request, states[i].dwCurrentState);
        free(name);
    }
    rv = run(&k);
    if (rv == SCARD_S_SUCCESS || rv == (LONG)SCARD_E_TIMEOUT) {
        get_u32(&k.reply);
        for (i = 0; i < count; i++) {
            const BYTE *atr;
            states[i].dwEventState = get_u32(&k.reply);
            atr = get_bytes(&k.reply, &n);
            if (n > sizeof states[i].rgbAtr)
                n = sizeof states[i].rgbAtr;
            states[i].cbAtr = n;
            if (n)
                memcpy(states[i].rgbAtr, atr, n);
        }
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardGetStatusChangeA(SCARDCONTEXT context, DWORD timeout, LPSCARD_READERSTATEA states, DWORD count)
{
    return status_change(context, timeout, states, count, FALSE);
}

LONG WINAPI SCardGetStatusChangeW(SCARDCONTEXT context, DWORD timeout, LPSCARD_READERSTATEW states, DWORD count)
{
    return status_change(context, timeout, (SCARD_READERSTATEA *)states, count, TRUE);
}

LONG WINAPI SCardTransmit(SCARDHANDLE card, LPCSCARD_IO_REQUEST send_pci, LPCBYTE command, DWORD command_length,
                          LPSCARD_IO_REQUEST recv_pci, LPBYTE response, LPDWORD response_length)
{
    call_t k;
    DWORD protocol, n;
    const BYTE *bytes;
    LONG rv;
    if (!send_pci || !command || !response || !response_length || *response_length == SCARD_AUTOALLOCATE)
        return SCARD_E_INVALID_PARAMETER;
    rv = start_on_card(&k, card, OP_TRANSMIT);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, send_pci->dwProtocol);
    put_bytes(&k.request, command, command_length);
    put_u32(&k.request, *response_length);
    rv = run(&k);
    protocol = get_u32(&k.reply);
    bytes = get_bytes(&k.reply, &n);
    if (rv == SCARD_S_SUCCESS) {
        rv = deliver(bytes, n, 1, response, response_length);
        if (recv_pci) {
            recv_pci->dwProtocol = protocol;
            recv_pci->cbPciLength = sizeof *recv_pci;
        }
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardControl(SCARDHANDLE card, DWORD code, LPCVOID input, DWORD input_length, LPVOID output,
                         DWORD output_size, LPDWORD returned)
{
    call_t k;
    DWORD n;
    const BYTE *bytes;
    LONG rv;
    if ((!input && input_length) || (!output && output_size) || !returned)
        return SCARD_E_INVALID_PARAMETER;
    rv = start_on_card(&k, card, OP_CONTROL);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, code);
    put_bytes(&k.request, input, input_length);
    put_u32(&k.request, output_size);
    rv = run(&k);
    bytes = get_bytes(&k.reply, &n);
    if (rv == SCARD_S_SUCCESS && n > output_size) {
        rv = SCARD_E_INSUFFICIENT_BUFFER; /* the relay never returns more than asked for */
    } else if (rv == SCARD_S_SUCCESS) {
        memcpy(output, bytes, n);
        *returned = n;
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardGetAttrib(SCARDHANDLE card, DWORD attribute, LPBYTE value, LPDWORD length)
{
    call_t k;
    DWORD n;
    const BYTE *bytes;
    LONG rv;
    /* The names' W forms are the A forms (pcscd's UTF-8) in UTF-16; the A forms are in CP_ACP. */
    BOOL name = attribute == SCARD_ATTR_DEVICE_FRIENDLY_NAME_A || attribute == SCARD_ATTR_DEVICE_SYSTEM_NAME_A;
    BOOL wide = attribute == SCARD_ATTR_DEVICE_FRIENDLY_NAME_W || attribute == SCARD_ATTR_DEVICE_SYSTEM_NAME_W;
    if (!length)
        return SCARD_E_INVALID_PARAMETER;
    rv = start_on_card(&k, card, OP_GET_ATTRIB);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, wide ? attribute - 2 : attribute);
    rv = run(&k);
    bytes = get_bytes(&k.reply, &n);
    if (rv == SCARD_S_SUCCESS && (name || wide)) {
        size_t unit = wide ? sizeof(WCHAR) : 1;
        DWORD text = n && bytes[n - 1] == 0 ? n - 1 : n;
        DWORD units = caller_form(bytes, text, wide, NULL) + 1;
        BYTE *converted = calloc(units, unit);
        if (converted) {
            caller_form(bytes, text, wide, converted);
            rv = deliver(converted, units * (DWORD)unit, 1, value, length);
            free(converted);
        } else {
            rv = SCARD_E_NO_MEMORY;
        }
    } else if (rv == SCARD_S_SUCCESS) {
        rv = deliver(bytes, n, 1, value, length);
    }
    finish(&k);
    return rv;
}

LONG WINAPI SCardSetAttrib(SCARDHANDLE card, DWORD attribute, LPCBYTE value, DWORD length)
{
    call_t k;
    LONG rv;
    if (!value && length)
        return SCARD_E_INVALID_PARAMETER;
    rv = start_on_card(&k, card, OP_SET_ATTRIB);
    if (rv != SCARD_S_SUCCESS)
        return rv;
    put_u32(&k.request, attribute);
    put_bytes(&k.request, value, length);
    rv = run(&k);
    finish(&k);
    return rv;
}

/* ---- the rest of winscard.dll's exports ----
 * The smart card database, reader groups, the card cache and the transmit counter have no
 * pcsc-lite counterpart. They are exported so that programs importing them load, and answer
 * SCARD_E_UNSUPPORTED_FEATURE. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define UNSUPPORTED(name, parameters)     \
    LONG WINAPI name parameters           \
    {                                     \
        return SCARD_E_UNSUPPORTED_FEATURE; \
    }
UNSUPPORTED(SCardListCardsA, (SCARDCONTEXT c, LPCBYTE atr, LPCGUID g, DWORD n, LPSTR cards, LPDWORD len))
UNSUPPORTED(SCardListCardsW, (SCARDCONTEXT c, LPCBYTE atr, LPCGUID g, DWORD n, LPWSTR cards, LPDWORD len))
UNSUPPORTED(SCardListInterfacesA, (SCARDCONTEXT c, LPCSTR card, LPGUID g, LPDWORD n))
UNSUPPORTED(SCardListInterfacesW, (SCARDCONTEXT c, LPCWSTR card, LPGUID g, LPDWORD n))
UNSUPPORTED(SCardGetProviderIdA, (SCARDCONTEXT c, LPCSTR card, LPGUID g))
UNSUPPORTED(SCardGetProviderIdW, (SCARDCONTEXT c, LPCWSTR card, LPGUID g))
UNSUPPORTED(SCardGetCardTypeProviderNameA, (SCARDCONTEXT c, LPCSTR card, DWORD id, LPSTR p, LPDWORD len))
UNSUPPORTED(SCardGetCardTypeProviderNameW, (SCARDCONTEXT c, LPCWSTR card, DWORD id, LPWSTR p, LPDWORD len))
UNSUPPORTED(SCardIntroduceReaderGroupA, (SCARDCONTEXT c, LPCSTR group))
UNSUPPORTED(SCardIntroduceReaderGroupW, (SCARDCONTEXT c, LPCWSTR group))
UNSUPPORTED(SCardForgetReaderGroupA, (SCARDCONTEXT c, LPCSTR group))
UNSUPPORTED(SCardForgetReaderGroupW, (SCARDCONTEXT c, LPCWSTR group))
UNSUPPORTED(SCardIntroduceReaderA, (SCARDCONTEXT c, LPCSTR reader, LPCSTR device))
UNSUPPORTED(SCardIntroduceReaderW, (SCARDCONTEXT c, LPCWSTR reader, LPCWSTR device))
UNSUPPORTED(SCardForgetReaderA, (SCARDCONTEXT c, LPCSTR reader))
UNSUPPORTED(SCardForgetReaderW, (SCARDCONTEXT c, LPCWSTR reader))
UNSUPPORTED(SCardAddReaderToGroupA, (SCARDCONTEXT c, LPCSTR reader, LPCSTR group))
UNSUPPORTED(SCardAddReaderToGroupW, (SCARDCONTEXT c, LPCWSTR reader, LPCWSTR group))
UNSUPPORTED(SCardRemoveReaderFromGroupA, (SCARDCONTEXT c, LPCSTR reader, LPCSTR group))
UNSUPPORTED(SCardRemoveReaderFromGroupW, (SCARDCONTEXT c, LPCWSTR reader, LPCWSTR group))
UNSUPPORTED(SCardIntroduceCardTypeA, (SCARDCONTEXT c, LPCSTR card, LPCGUID p, LPCGUID i, DWORD n, LPCBYTE atr,
                                      LPCBYTE mask, DWORD len))
UNSUPPORTED(SCardIntroduceCardTypeW, (SCARDCONTEXT c, LPCWSTR card, LPCGUID p, LPCGUID i, DWORD n, LPCBYTE atr,
                                      LPCBYTE mask, DWORD len))
UNSUPPORTED(SCardSetCardTypeProviderNameA, (SCARDCONTEXT c, LPCSTR card, DWORD id, LPCSTR p))
UNSUPPORTED(SCardSetCardTypeProviderNameW, (SCARDCONTEXT c, LPCWSTR card, DWORD id, LPCWSTR p))
UNSUPPORTED(SCardForgetCardTypeA, (SCARDCONTEXT c, LPCSTR card))
UNSUPPORTED(SCardForgetCardTypeW, (SCARDCONTEXT c, LPCWSTR card))
UNSUPPORTED(SCardLocateCardsA, (SCARDCONTEXT c, LPCSTR cards, LPSCARD_READERSTATEA states, DWORD n))
UNSUPPORTED(SCardLocateCardsW, (SCARDCONTEXT c, LPCWSTR cards, LPSCARD_READERSTATEW states, DWORD n))
UNSUPPORTED(SCardLocateCardsByATRA, (SCARDCONTEXT c, LPSCARD_ATRMASK masks, DWORD m, LPSCARD_READERSTATEA states,
                                     DWORD n))
UNSUPPORTED(SCardLocateCardsByATRW, (SCARDCONTEXT c, LPSCARD_ATRMASK masks, DWORD m, LPSCARD_READERSTATEW states,
                                     DWORD n))
UNSUPPORTED(SCardGetTransmitCount, (SCARDHANDLE card, LPDWORD count))
UNSUPPORTED(SCardReadCacheA, (SCARDCONTEXT c, UUID *id, DWORD fresh, LPSTR name, PBYTE data, DWORD *len))
UNSUPPORTED(SCardReadCacheW, (SCARDCONTEXT c, UUID *id, DWORD fresh, LPWSTR name, PBYTE data, DWORD *len))
UNSUPPORTED(SCardWriteCacheA, (SCARDCONTEXT c, UUID *id, DWORD fresh, LPSTR name, PBYTE data, DWORD len))
UNSUPPORTED(SCardWriteCacheW, (SCARDCONTEXT c, UUID *id, DWORD fresh, LPWSTR name, PBYTE data, DWORD len))

/* No reader is ever added to the lab while a program runs. */
HANDLE WINAPI SCardAccessNewReaderEvent(void)
{
    return NULL;
}

void WINAPI SCardReleaseNewReaderEvent(void)
{
}

void WINAPI SCardReleaseAllEvents(void)
{
}
