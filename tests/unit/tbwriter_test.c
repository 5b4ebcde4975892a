/* Tests for common/crc32c, common/tb/tfrecord and common/tb/tbwriter: CRC-32C on the published
 * vectors (RFC 3720 B.4 and the "123456789" check value), masking, record framing bytes, corrupt
 * and truncated records refused, and event files read back through the generated parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/tb/tbhparams.h"
#include "common/tb/tbwriter.h"
#include "common/tb/tfrecord.h"
#include "scratch.h"
#include "tensorboard.pb-c.h"
#include "tensorboard_hparams.pb-c.h"

static void crc32c_matches_published_vectors(void **state)
{
    uint8_t buf[32];
    assert_int_equal(pst_crc32c(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, sizeof buf);
    assert_int_equal(pst_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(pst_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(pst_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(pst_crc32c(0, buf, 32), 0x113FDB5Cu);
    /* continuing a CRC equals one pass */
    assert_int_equal(pst_crc32c(pst_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void mask_rotates_and_offsets(void **state)
{
    /* rotr(0xE3069283, 15) = 0x2507C60D, plus 0xa282ead8 */
    assert_int_equal(pst_crc32c_mask(0xE3069283u), 0xC78AB0E5u);
    assert_int_equal(pst_crc32c_mask(0), 0xa282ead8u);
    assert_int_equal(pst_crc32c_unmask(pst_crc32c_mask(0x12345678u)), 0x12345678u);
}

static void record_bytes_are_the_tfrecord_layout(void **state)
{
    uint8_t h[PST_TFRECORD_HEADER], f[PST_TFRECORD_FOOTER];
    pst_tfrecord_header(h, 5);
    const uint8_t want_h[] = {5, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xb2, 0x04, 0x3e};
    assert_memory_equal(h, want_h, sizeof want_h);
    pst_tfrecord_footer(f, "hello", 5);
    const uint8_t want_f[] = {0xbb, 0x1f, 0x1c, 0x19};
    assert_memory_equal(f, want_f, sizeof want_f);
    pst_tfrecord_header(h, 0);
    assert_int_equal(h[8] | h[9] << 8 | h[10] << 16 | (uint32_t)h[11] << 24, 0x07980329u);
}

/* Two records written to a file, then read back: bodies intact, then the clean end. */
static void records_round_trip_and_damage_is_refused(void **state)
{
    char path[256];
    pst_scratch_path(path, "two.tfrecord");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    int fd = fileno(fp);
    assert_int_equal(pst_tfrecord_write(fd, "hello", 5, NULL), PST_OK);
    assert_int_equal(pst_tfrecord_write(fd, "", 0, NULL), PST_OK);
    fclose(fp);
    unsigned char *buf;
    size_t size, off = 0, len;
    const uint8_t *data;
    assert_int_equal(pst_read_file(path, 1 << 20, &buf, &size, NULL), PST_OK);
    assert_int_equal(size, 21 + 16);
    assert_int_equal(pst_tfrecord_next(buf, size, &off, &data, &len, NULL), PST_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    assert_int_equal(pst_tfrecord_next(buf, size, &off, &data, &len, NULL), PST_OK);
    assert_int_equal(len, 0);
    assert_int_equal(pst_tfrecord_next(buf, size, &off, &data, &len, NULL), PST_ENOTFOUND);

    pst_err_t err = {0};
    off = 0;
    buf[PST_TFRECORD_HEADER + 1] ^= 1; /* a data byte */
    assert_int_equal(pst_tfrecord_next(buf, size, &off, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "offset 0: data checksum"));
    buf[PST_TFRECORD_HEADER + 1] ^= 1;
    buf[0] = 200; /* the length */
    assert_int_equal(pst_tfrecord_next(buf, size, &off, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "length checksum"));
    buf[0] = 5;
    off = 21; /* the second record cut short */
    assert_int_equal(pst_tfrecord_next(buf, size - 1, &off, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "offset 21"));
    free(buf);
}

/* Reads every event of the writer's file. */
static int read_events(const char *path, Tensorflow__Event **events, int cap)
{
    unsigned char *buf;
    size_t size, off = 0, len;
    const uint8_t *data;
    assert_int_equal(pst_read_file(path, 1 << 24, &buf, &size, NULL), PST_OK);
    int n = 0;
    while (pst_tfrecord_next(buf, size, &off, &data, &len, NULL) == PST_OK && n < cap) {
        events[n] = tensorflow__event__unpack(NULL, len, data);
        assert_non_null(events[n]);
        n++;
    }
    assert_int_equal(off, size);
    free(buf);
    return n;
}

static void event_file_holds_version_scalars_and_histogram(void **state)
{
    char dir[256];
    pst_scratch_path(dir, "tb");
    pst_tbwriter_t *w = pst_tbwriter_new(dir, NULL);
    assert_non_null(w);
    assert_non_null(strstr(pst_tbwriter_path(w), "/tb/events.out.tfevents."));
    const char *tags[] = {"loss", "skipped", "val_accuracy"};
    const double vals[] = {0.25, NAN, 0.875};
    assert_int_equal(pst_tbwriter_scalars(w, 3, tags, vals, 3, NULL), PST_OK);
    const float hv[] = {-1, 0, 0.5, 1, 1, INFINITY};
    assert_int_equal(pst_tbwriter_histogram(w, "w/layer0", 4, hv, 6, 4, NULL), PST_OK);
    char path[1300];
    snprintf(path, sizeof path, "%s", pst_tbwriter_path(w));
    pst_tbwriter_destroy(&w);
    pst_tbwriter_destroy(&w); /* safe twice */

    Tensorflow__Event *ev[8];
    assert_int_equal(read_events(path, ev, 8), 3);
    assert_int_equal(ev[0]->what_case, TENSORFLOW__EVENT__WHAT_FILE_VERSION);
    assert_string_equal(ev[0]->file_version, "brain.Event:2");
    assert_true(ev[0]->wall_time > 1.6e9);
    assert_int_equal(ev[1]->step, 3);
    assert_int_equal(ev[1]->what_case, TENSORFLOW__EVENT__WHAT_SUMMARY);
    assert_int_equal(ev[1]->summary->n_value, 2); /* NaN left out */
    assert_string_equal(ev[1]->summary->value[0]->tag, "loss");
    assert_true(ev[1]->summary->value[0]->simple_value == 0.25f);
    assert_string_equal(ev[1]->summary->value[1]->tag, "val_accuracy");
    assert_true(ev[1]->summary->value[1]->simple_value == 0.875f);
    const Tensorflow__HistogramProto *h = ev[2]->summary->value[0]->histo;
    assert_int_equal(ev[2]->step, 4);
    assert_true(h->min == -1 && h->max == 1 && h->num == 5 && h->sum == 1.5);
    assert_true(h->sum_squares == 3.25);
    assert_int_equal(h->n_bucket, 4);
    /* width 0.5: [-1,-0.5) 1, [-0.5,0) 0, [0,0.5) 1, [0.5,1] 3 */
    const double want[] = {1, 0, 1, 3}, limits[] = {-0.5, 0, 0.5, 1};
    for (int b = 0; b < 4; b++) {
        assert_true(h->bucket[b] == want[b]);
        assert_true(h->bucket_limit[b] == limits[b]);
    }
    for (int i = 0; i < 3; i++)
        tensorflow__event__free_unpacked(ev[i], NULL);
}

static void hparams_summaries_carry_plugin_data(void **state)
{
    char dir[256];
    pst_scratch_path(dir, "tbh");
    pst_tbwriter_t *w = pst_tbwriter_new(dir, NULL);
    assert_non_null(w);
    const pst_tb_hparam_t hp[] = {
        {.name = "optimizer.lr", .number = 0.01},
        {.name = "optimizer.name", .kind = PST_TB_HPARAM_STRING, .string = "adam"}};
    const char *metrics[] = {"val_accuracy"};
    assert_int_equal(pst_tbhparams_experiment(w, hp, 2, metrics, 1, NULL), PST_OK);
    assert_int_equal(pst_tbhparams_session_start(w, hp, 2, NULL), PST_OK);
    assert_int_equal(pst_tbhparams_session_end(w, true, NULL), PST_OK);
    char path[1300];
    snprintf(path, sizeof path, "%s", pst_tbwriter_path(w));
    pst_tbwriter_destroy(&w);

    Tensorflow__Event *ev[8];
    assert_int_equal(read_events(path, ev, 8), 4);
    const char *tags[] = {"_hparams_/experiment", "_hparams_/session_start_info",
                          "_hparams_/session_end_info"};
    for (int i = 1; i < 4; i++) {
        const Tensorflow__Summary__Value *v = ev[i]->summary->value[0];
        assert_string_equal(v->tag, tags[i - 1]);
        assert_string_equal(v->metadata->plugin_data->plugin_name, "hparams");
        Tensorboard__Hparams__HParamsPluginData *pd =
            tensorboard__hparams__hparams_plugin_data__unpack(
                NULL, v->metadata->plugin_data->content.len,
                v->metadata->plugin_data->content.data);
        assert_non_null(pd);
        assert_int_equal(pd->data_case, i + 1); /* experiment 2, start 3, end 4 */
        if (i == 1) {
            assert_int_equal(pd->experiment->n_hparam_infos, 2);
            assert_string_equal(pd->experiment->hparam_infos[1]->name, "optimizer.name");
            assert_string_equal(pd->experiment->metric_infos[0]->name->tag, "val_accuracy");
        } else if (i == 2) {
            assert_int_equal(pd->session_start_info->n_hparams, 2);
            assert_true(pd->session_start_info->hparams[0]->value->number_value == 0.01);
            assert_string_equal(pd->session_start_info->hparams[1]->value->string_value, "adam");
        } else {
            assert_int_equal(pd->session_end_info->status,
                             TENSORBOARD__HPARAMS__STATUS__STATUS_SUCCESS);
        }
        tensorboard__hparams__hparams_plugin_data__free_unpacked(pd, NULL);
    }
    for (int i = 0; i < 4; i++)
        tensorflow__event__free_unpacked(ev[i], NULL);
}

static void unwritable_directory_is_an_error(void **state)
{
    pst_err_t err = {0};
    char path[256];
    const char *file = pst_scratch_file(".txt", "x");
    snprintf(path, sizeof path, "%s/sub", file); /* a directory under a regular file */
    assert_null(pst_tbwriter_new(path, &err));
    assert_true(err.code < 0);
    assert_non_null(strstr(err.msg, file));
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_published_vectors),
        cmocka_unit_test(mask_rotates_and_offsets),
        cmocka_unit_test(record_bytes_are_the_tfrecord_layout),
        cmocka_unit_test(records_round_trip_and_damage_is_refused),
        cmocka_unit_test(event_file_holds_version_scalars_and_histogram),
        cmocka_unit_test(hparams_summaries_carry_plugin_data),
        cmocka_unit_test(unwritable_directory_is_an_error),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
