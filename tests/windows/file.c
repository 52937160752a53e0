/*
 * File access (scm_file_*) on the lab's ISO 7816-4 card (`scm-lab run --iso`): the 40 000-byte
 * EF read in one call bit-exact, in two commands with extended length; written, sought and read
 * back; a record file; paths relative and by DF name; the codes of the common mistakes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define BIG_SIZE 40000
#define BIG "3F00/5000/5002"

/* The commands the card in reader 0 has answered so far. */
static unsigned long card_commands(void)
{
    char reply[64];
    return control("iso-commands 0", reply, sizeof reply) ? strtoul(reply, NULL, 10) : 0;
}

static void read_big(scm_file_access *f, uint8_t *buf)
{
    uint32_t file = 0;
    size_t len = BIG_SIZE + 100, i, wrong = 0;
    unsigned long before;
    begin("file: the 40 000-byte EF in one scm_file_read");
    expect_hr("open", scm_file_open(f, SCM_REF_BY_ID, BIG, &file), SCM_S_OK);
    before = card_commands();
    expect_hr("read", scm_file_read(f, file, buf, &len, 0), SCM_S_OK);
    before = card_commands() - before;
    expect(len == BIG_SIZE, "read %lu bytes", (unsigned long)len);
    for (i = 0; i < len; i++)
        wrong += buf[i] != (uint8_t)(i % 251);
    expect(wrong == 0, "%lu bytes differ", (unsigned long)wrong);
    expect(before == 2, "%lu commands, not SELECT + one extended READ BINARY", before);
    len = 10;
    expect_hr("read at the end", scm_file_read(f, file, buf, &len, 0), SCM_SCARD_W_EOF);
    expect(len == 0, "*len %lu at the end", (unsigned long)len);
    expect_hr("close", scm_file_close(f, file), SCM_S_OK);
    expect_hr("closed", scm_file_close(f, file), SCM_E_HANDLE);
    pass("%lu bytes bit-exact in %lu commands; then SCARD_W_EOF with *len 0", (unsigned long)BIG_SIZE, before);
}

static void write_seek_read(scm_file_access *f, uint8_t *buf)
{
    static const uint8_t text[] = "written past offset 32767";
    uint8_t back[sizeof text];
    uint32_t file = 0;
    uint64_t position = 0;
    size_t len = sizeof back;
    begin("file: write, seek and read back past offset 32767");
    expect_hr("open", scm_file_open(f, SCM_REF_BY_ID, BIG, &file), SCM_S_OK);
    expect_hr("seek", scm_file_seek(f, file, SCM_SEEK_FROM_END, -100, &position), SCM_S_OK);
    expect(position == BIG_SIZE - 100, "position %llu", (unsigned long long)position);
    expect_hr("write", scm_file_write(f, file, text, sizeof text, 0), SCM_S_OK);
    expect_hr("seek back", scm_file_seek(f, file, SCM_SEEK_RELATIVE, -(int64_t)sizeof text, &position), SCM_S_OK);
    expect_hr("read back", scm_file_read(f, file, back, &len, 0), SCM_S_OK);
    expect(len == sizeof text && memcmp(back, text, len) == 0, "read back %lu bytes, not the text", (unsigned long)len);
    expect_hr("write past the end", scm_file_write(f, file, buf, 200, 0), SCM_SCARD_E_WRITE_TOO_MANY);
    expect_hr("seek before 0", scm_file_seek(f, file, SCM_SEEK_FROM_BEGINNING, -1, &position), SCM_SCARD_E_BAD_SEEK);
    expect_hr("origin 3", scm_file_seek(f, file, 3, 0, &position), SCM_E_INVALIDARG);
    expect_hr("flags", scm_file_read(f, file, back, &len, 8), SCM_E_INVALIDARG);
    expect_hr("close", scm_file_close(f, file), SCM_S_OK);
    pass("the text written at %lu and read back; past the end, before 0, origin 3 and flags refused",
         (unsigned long)(BIG_SIZE - 100));
}

static void records_and_paths(scm_file_access *f)
{
    uint8_t record[64], expected[16];
    char dir[64];
    size_t len = sizeof record, dir_len = sizeof dir;
    uint32_t file = 0;
    begin("file: records, relative paths and DF names");
    expect_hr("cd by name", scm_file_change_dir(f, SCM_REF_BY_NAME, "F053434D49534F"), SCM_S_OK);
    expect_hr("cwd", scm_file_get_current_dir(f, dir, &dir_len), SCM_S_OK);
    expect(strcmp(dir, "F053434D49534F") == 0, "current directory %s", dir);
    expect_hr("open records by SFI", scm_file_open(f, SCM_REF_BY_SHORT_ID, "3", &file), SCM_S_OK);
    expect_hr("record 1", scm_file_read(f, file, record, &len, 0), SCM_S_OK);
    memset(expected, 1, sizeof expected);
    expect(len == 16 && memcmp(record, expected, 16) == 0, "record 1: %lu bytes", (unsigned long)len);
    len = 4;
    expect_hr("record 2, small buffer", scm_file_read(f, file, record, &len, 0), SCM_SCARD_E_INSUFFICIENT_BUFFER);
    expect(len == 16, "size needed %lu", (unsigned long)len);
    expect_hr("cd to an EF", scm_file_change_dir(f, SCM_REF_BY_ID, "5001"), SCM_SCARD_E_NO_DIR);
    expect_hr("cd relative", scm_file_change_dir(f, SCM_REF_BY_ID, "5100"), SCM_S_OK);
    dir_len = sizeof dir;
    expect_hr("cwd", scm_file_get_current_dir(f, dir, &dir_len), SCM_S_OK);
    expect(strcmp(dir, "F053434D49534F/5100") == 0, "current directory %s", dir);
    expect_hr("missing file", scm_file_open(f, SCM_REF_BY_ID, "5999", &file), SCM_SCARD_E_FILE_NOT_FOUND);
    expect_hr("bad path", scm_file_open(f, SCM_REF_BY_ID, "50/01", &file), SCM_E_INVALIDARG);
    pass("record 1 by SFI, INSUFFICIENT_BUFFER with 16 needed; directories %s; NO_DIR, FILE_NOT_FOUND, "
         "INVALIDARG", dir);
}

int main(void)
{
    const char *reader = lab_reader();
    scm_manage *m;
    scm_file_access *f = NULL;
    uint8_t *buf = malloc(BIG_SIZE + 100);
    begin("file: an object on the attached manager");
    if (buf == NULL || reader == NULL || (m = attached(reader)) == NULL)
        return finish();
    expect_hr("create", scm_create_file_access(m, &f), SCM_S_OK);
    if (f == NULL)
        return finish();
    pass("created");
    read_big(f, buf);
    write_seek_read(f, buf);
    records_and_paths(f);
    begin("file: refused once the manager is released");
    expect_hr("release the manager", scm_release(m), SCM_S_OK);
    expect_hr("cd", scm_file_change_dir(f, SCM_REF_BY_ID, "3F00"), SCM_E_HANDLE);
    expect_hr("release", scm_file_access_release(f), SCM_S_OK);
    expect_hr("release again", scm_file_access_release(f), SCM_E_HANDLE);
    pass("SCM_E_HANDLE after the manager's release; the object's own release works once");
    free(buf);
    return finish();
}
