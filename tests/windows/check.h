/*
 * The harness of the Windows suite: the same C99 source builds with gcc on Linux and with
 * mingw-w64 for Windows, so each scenario has a Linux baseline for the line it prints under Wine.
 *
 * Reporting: a scenario is begun with `begin`, every check that fails prints
 * `FAILED: <scenario>: ...`, and `pass` prints `ok: <scenario>: <what it saw>` only when none
 * failed. `finish` gives the program's exit code (non-zero after any failure).
 *
 * The lab is reached only through its environment (`SCM_LAB_READER`, `SCM_LAB_CONTROL`) and
 * its control channel; the platform's PC/SC is called directly only for the program's own
 * connection (raw_*), the "other program" of the scenarios.
 */
#ifndef SCM_WINTEST_CHECK_H
#define SCM_WINTEST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "scardmanage.h"

/* --- reporting --------------------------------------------------------------------------- */

void begin(const char *scenario);
/* Prints FAILED with the formatted text when `cond` is false; returns `cond`. */
int expect(int cond, const char *fmt, ...);
/* `got == want`, or FAILED naming both codes and the library's texts. */
int expect_hr(const char *what, scm_hresult got, scm_hresult want);
/* The ok line of the current scenario, unless one of its checks failed. */
void pass(const char *fmt, ...);
int finish(void);
/* "0x80100068" for a code, in a ring of 16 buffers: enough for the codes of one printed line. */
const char *hex(scm_hresult hr);

/* --- time and threads -------------------------------------------------------------------- */

double now_ms(void);
void sleep_ms(unsigned ms);

struct thread {
    void (*run)(void *arg);
    void *arg;
    void *native; /* HANDLE on Windows, a malloc'd pthread_t elsewhere */
};
int thread_start(struct thread *t, void (*run)(void *arg), void *arg);
void thread_join(struct thread *t);

/* --- the lab ----------------------------------------------------------------------------- */

/* Sends one request on the control channel; on `ok` copies the data (may be empty) into
   `data` and returns 1, otherwise prints FAILED with the reply and returns 0. */
int control(const char *request, char *data, size_t cap);
/* SCM_LAB_READER, or FAILED and NULL. */
const char *lab_reader(void);
/* The index and name of the first lab reader whose name is not ASCII (`--friendly`). */
int lab_non_ascii_reader(int *index, char *name, size_t cap);
/* `counters <i>` parsed: the APDUs, resets and power-offs the card in reader i has seen. */
int lab_counters(int reader, unsigned long *apdus, unsigned long *resets, unsigned long *power_off);

/* --- the library ------------------------------------------------------------------------- */

/* A new manager attached to `reader` by UTF-8 name, or FAILED and NULL. */
scm_manage *attached(const char *reader);
/* ECHO `text` through the manager: the answer must be the text and 90 00. */
int echo_ok(scm_manage *m, const char *text);
/* The ECHO command for `text` into `apdu` (at least strlen + 6 bytes); returns its length. */
size_t echo_apdu(const char *text, uint8_t *apdu);
/* UTF-8 to NUL-terminated UTF-16 (at most `cap` units with the NUL); returns 0 on bad input. */
int utf8_to_utf16(const char *utf8, uint16_t *out, size_t cap);
/* Whether the NUL-separated multi-string `list` holds `name`, byte for byte. */
int multi_string_has(const char *list, size_t len, const char *name);
/* The UTF-8 name with its non-ASCII characters shown as U+XXXX, for the printed lines. */
const char *spell(const char *utf8);

/* --- the program's own PC/SC connection (SCardConnectW on Windows, SCardConnect elsewhere) - */

struct raw_conn {
    uintptr_t context;
    uintptr_t card;
};
/* PC/SC return values as the platform gives them (32-bit codes). */
int32_t raw_connect(struct raw_conn *c, const char *utf8_name);
int32_t raw_echo(struct raw_conn *c, const char *text);
int32_t raw_reset(struct raw_conn *c);
void raw_close(struct raw_conn *c);

#endif
