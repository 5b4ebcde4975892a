/* Fuzz targets: every decoder of untrusted bytes, driven by libFuzzer (scripts/fuzz.sh) or by the
 * replay driver that runs a target over files (the test suite's regression run). */
#ifndef PST_FUZZ_H
#define PST_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry point every target defines. Returns 0; a bug shows as a crash, a sanitizer
 * report or an abort from pst_fuzz_check. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when cond is false: a broken invariant of the code under test. */
void pst_fuzz_check(int cond, const char *what);

/* The server target's op byte: op % 13 is the wire op of that number, except that 12 stands for
 * DROP (the federated ops 12..16 are not a parameter server's). */
enum { PST_FUZZ_SERVER_OPS = 13, PST_FUZZ_SERVER_OP_DROP = 12 };

/* zmq_send that retries when a signal interrupts it: libFuzzer's timeout timer (SIGALRM) does now
 * and then, and a harness must not report that as a bug. Returns zmq_send's result. */
int pst_fuzz_zmq_send(void *sock, const void *data, size_t len, int flags);

/* Writes data to a scratch file private to this process (the same path on every call, so one
 * input at a time) whose name ends in suffix; returns its path. Aborts on I/O failure. */
const char *pst_fuzz_scratch_file(const uint8_t *data, size_t size, const char *suffix);

/* Whether this input is one of the 1 in n (by a hash of its bytes, so a replay decides the same)
 * that a target sends through its slower, outer path: a file instead of memory, a server thread
 * instead of the caller's. */
bool pst_fuzz_one_in(const uint8_t *data, size_t size, uint32_t n);

/* Splits input into frames: each frame is a 2-byte little-endian length, then that many bytes
 * (cut short at the end of the input). Returns the frames found, at most max. */
typedef struct pst_fuzz_frame {
    const uint8_t *data;
    size_t len;
} pst_fuzz_frame_t;
int pst_fuzz_split_frames(const uint8_t *data, size_t size, pst_fuzz_frame_t *frames, int max,
                          size_t *used);

#endif
