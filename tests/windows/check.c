/* The harness (see check.h): reporting, clock, threads, the control channel, helpers. */
#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#define _POSIX_C_SOURCE 200112L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* --- reporting --------------------------------------------------------------------------- */

static const char *current = "setup";
static int current_failed;
static int failures;

void begin(const char *scenario)
{
    current = scenario;
    current_failed = 0;
}

static void vreport(const char *verdict, const char *fmt, va_list args)
{
    printf("%s: %s: ", verdict, current);
    vprintf(fmt, args);
    printf("\n");
    /* Line by line: a crash or a hang under Wine must not swallow what came before. */
    fflush(stdout);
}

int expect(int cond, const char *fmt, ...)
{
    va_list args;
    if (cond)
        return 1;
    current_failed = 1;
    failures++;
    va_start(args, fmt);
    vreport("FAILED", fmt, args);
    va_end(args);
    return 0;
}

const char *hex(scm_hresult hr)
{
    static char ring[16][12];
    static int next;
    char *out = ring[next++ % 16];
    snprintf(out, sizeof ring[0], "0x%08lX", (unsigned long)(uint32_t)hr);
    return out;
}

int expect_hr(const char *what, scm_hresult got, scm_hresult want)
{
    if (got == want)
        return 1;
    return expect(0, "%s: got %s (%s), want %s (%s)", what, hex(got), scm_error_message(got), hex(want),
                  scm_error_message(want));
}

void pass(const char *fmt, ...)
{
    va_list args;
    if (current_failed)
        return;
    va_start(args, fmt);
    vreport("ok", fmt, args);
    va_end(args);
}

int finish(void)
{
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --- time and threads -------------------------------------------------------------------- */

#ifdef _WIN32
double now_ms(void)
{
    LARGE_INTEGER count, frequency;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&frequency);
    return (double)count.QuadPart * 1000.0 / (double)frequency.QuadPart;
}

void sleep_ms(unsigned ms)
{
    Sleep(ms);
}

static DWORD WINAPI trampoline(LPVOID arg)
{
    struct thread *t = arg;
    t->run(t->arg);
    return 0;
}

int thread_start(struct thread *t, void (*run)(void *arg), void *arg)
{
    t->run = run;
    t->arg = arg;
    t->native = CreateThread(NULL, 0, trampoline, t, 0, NULL);
    return t->native != NULL;
}

void thread_join(struct thread *t)
{
    WaitForSingleObject(t->native, INFINITE);
    CloseHandle(t->native);
}
#else
double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void *trampoline(void *arg)
{
    struct thread *t = arg;
    t->run(t->arg);
    return NULL;
}

int thread_start(struct thread *t, void (*run)(void *arg), void *arg)
{
    pthread_t *native = malloc(sizeof *native);
    t->run = run;
    t->arg = arg;
    t->native = native;
    if (native != NULL && pthread_create(native, NULL, trampoline, t) == 0)
        return 1;
    free(native);
    return 0;
}

void thread_join(struct thread *t)
{
    pthread_join(*(pthread_t *)t->native, NULL);
    free(t->native);
}
#endif

/* --- the control channel ----------------------------------------------------------------- */

#ifdef _WIN32
typedef SOCKET socket_t;
#define NO_SOCKET INVALID_SOCKET
#define close_socket closesocket
#else
typedef int socket_t;
#define NO_SOCKET (-1)
#define close_socket close
#endif

static socket_t channel = NO_SOCKET;

static int open_channel(void)
{
    const char *address = getenv("SCM_LAB_CONTROL");
    const char *colon = address != NULL ? strrchr(address, ':') : NULL;
    char host[64];
    struct sockaddr_in peer;
    if (!expect(colon != NULL && (size_t)(colon - address) < sizeof host,
                "SCM_LAB_CONTROL is %s, not HOST:PORT (run under scm-lab)", address ? address : "unset"))
        return 0;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
#ifdef _WIN32
    {
        WSADATA wsa;
        if (!expect(WSAStartup(MAKEWORD(2, 2), &wsa) == 0, "WSAStartup failed"))
            return 0;
    }
#endif
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)strtoul(colon + 1, NULL, 10));
    peer.sin_addr.s_addr = inet_addr(host);
    channel = socket(AF_INET, SOCK_STREAM, 0);
    if (!expect(channel != NO_SOCKET, "no socket for the control channel"))
        return 0;
    if (!expect(connect(channel, (struct sockaddr *)&peer, sizeof peer) == 0, "cannot connect to the control channel %s",
                address)) {
        close_socket(channel);
        channel = NO_SOCKET;
        return 0;
    }
    return 1;
}

int control(const char *request, char *data, size_t cap)
{
    char reply[1024];
    size_t len = 0;
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", request);
    if (channel == NO_SOCKET && !open_channel())
        return 0;
    if (!expect(send(channel, line, n, 0) == n, "control %s: send failed", request))
        return 0;
    /* Byte by byte up to the newline: replies are short, and nothing is read past them. */
    while (len + 1 < sizeof reply) {
        char c;
        if (!expect(recv(channel, &c, 1, 0) == 1, "control %s: the channel closed", request))
            return 0;
        if (c == '\n')
            break;
        reply[len++] = c;
    }
    reply[len] = '\0';
    if (!expect(strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' '), "control %s: %s", request, reply))
        return 0;
    if (data != NULL) {
        const char *payload = reply[2] == ' ' ? reply + 3 : "";
        if (!expect(strlen(payload) < cap, "control %s: reply too long", request))
            return 0;
        strcpy(data, payload);
    }
    return 1;
}

const char *lab_reader(void)
{
    const char *name = getenv("SCM_LAB_READER");
    expect(name != NULL && *name != '\0', "SCM_LAB_READER is not set (run under scm-lab)");
    return name;
}

int lab_non_ascii_reader(int *index, char *name, size_t cap)
{
    char count[16];
    int i, n;
    if (!control("readers", count, sizeof count))
        return 0;
    n = atoi(count);
    for (i = 0; i < n; i++) {
        char request[32];
        const unsigned char *p;
        snprintf(request, sizeof request, "reader %d", i);
        if (!control(request, name, cap))
            return 0;
        for (p = (const unsigned char *)name; *p != '\0'; p++) {
            if (*p >= 0x80) {
                *index = i;
                return 1;
            }
        }
    }
    return expect(0, "none of the %d lab readers has a non-ASCII name (scm-lab --friendly K=NAME)", n);
}

int lab_counters(int reader, unsigned long *apdus, unsigned long *resets, unsigned long *power_off)
{
    char request[32], data[128];
    snprintf(request, sizeof request, "counters %d", reader);
    if (!control(request, data, sizeof data))
        return 0;
    return expect(sscanf(data, "apdus=%lu resets=%lu power_on=%*u power_off=%lu", apdus, resets, power_off) == 3,
                  "counters: unexpected reply %s", data);
}

/* --- the library ------------------------------------------------------------------------- */

scm_manage *attached(const char *reader)
{
    scm_manage *m = NULL;
    scm_hresult hr;
    if (!expect_hr("scm_create", scm_create(&m), SCM_S_OK))
        return NULL;
    hr = scm_attach_by_ifd(m, reader);
    if (!expect_hr("scm_attach_by_ifd", hr, SCM_S_OK)) {
        scm_release(m);
        return NULL;
    }
    return m;
}

size_t echo_apdu(const char *text, uint8_t *apdu)
{
    size_t n = strlen(text);
    apdu[0] = 0x80;
    apdu[1] = 0x10;
    apdu[2] = 0x00;
    apdu[3] = 0x00;
    apdu[4] = (uint8_t)n;
    memcpy(apdu + 5, text, n);
    apdu[5 + n] = 0x00;
    return n + 6;
}

int echo_ok(scm_manage *m, const char *text)
{
    uint8_t apdu[300], response[300];
    size_t len = sizeof response, n = strlen(text);
    size_t apdu_len = echo_apdu(text, apdu);
    if (!expect_hr("echo", scm_transmit(m, apdu, apdu_len, response, &len), SCM_S_OK))
        return 0;
    return expect(len == n + 2 && memcmp(response, text, n) == 0 && response[n] == 0x90 && response[n + 1] == 0x00,
                  "echo %s: wrong answer (%u bytes)", text, (unsigned)len);
}

int utf8_to_utf16(const char *utf8, uint16_t *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)utf8;
    size_t n = 0;
    while (*p != '\0') {
        uint32_t c;
        int extra;
        if (*p < 0x80) {
            c = *p;
            extra = 0;
        } else if ((*p & 0xE0) == 0xC0) {
            c = *p & 0x1F;
            extra = 1;
        } else if ((*p & 0xF0) == 0xE0) {
            c = *p & 0x0F;
            extra = 2;
        } else if ((*p & 0xF8) == 0xF0) {
            c = *p & 0x07;
            extra = 3;
        } else {
            return 0;
        }
        for (p++; extra > 0; extra--, p++) {
            if ((*p & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (*p & 0x3F);
        }
        if (n + (c >= 0x10000 ? 2 : 1) >= cap)
            return 0;
        if (c >= 0x10000) {
            out[n++] = (uint16_t)(0xD800 + ((c - 0x10000) >> 10));
            out[n++] = (uint16_t)(0xDC00 + ((c - 0x10000) & 0x3FF));
        } else {
            out[n++] = (uint16_t)c;
        }
    }
    out[n] = 0;
    return 1;
}

int multi_string_has(const char *list, size_t len, const char *name)
{
    const char *p = list;
    while (p < list + len && *p != '\0') {
        if (strcmp(p, name) == 0)
            return 1;
        p += strlen(p) + 1;
    }
    return 0;
}

const char *spell(const char *utf8)
{
    static char out[512];
    uint16_t wide[256];
    size_t i, n = 0;
    if (!utf8_to_utf16(utf8, wide, 256))
        return "(not UTF-8)";
    for (i = 0; wide[i] != 0 && n + 8 < sizeof out; i++) {
        if (wide[i] < 0x80)
            out[n++] = (char)wide[i];
        else
            n += (size_t)snprintf(out + n, sizeof out - n, "<U+%04X>", (unsigned)wide[i]);
    }
    out[n] = '\0';
    return out;
}
