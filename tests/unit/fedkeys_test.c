/* Tests for common/fedkeys: key pairs, secret-file permissions, no overwriting, and the list of
 * allowed site keys with its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fed/fedkeys.h"
#include "tests/unit/scratch.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void pair_round_trips_with_mode_0600(void **state)
{
    (void)state;
    pst_fedkey_pair_t kp, back;
    assert_int_equal(pst_fedkey_generate(&kp, NULL), PST_OK);
    assert_true(pst_fedkey_valid(kp.public_key));
    assert_true(pst_fedkey_valid(kp.secret_key));
    char prefix[256], path[300];
    pst_scratch_path(prefix, "site-a");
    assert_int_equal(pst_fedkey_write(&kp, prefix, NULL), PST_OK);
    snprintf(path, sizeof path, "%s.key", prefix);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pst_fedkey_read_pair(path, &back, NULL), PST_OK);
    assert_string_equal(back.public_key, kp.public_key);
    assert_string_equal(back.secret_key, kp.secret_key);
    char pub[PST_FEDKEY_Z85 + 1];
    snprintf(path, sizeof path, "%s.pub", prefix);
    assert_int_equal(pst_fedkey_read_public(path, pub, NULL), PST_OK);
    assert_string_equal(pub, kp.public_key);
    /* a .pub file holds no secret */
    pst_err_t err = {0};
    assert_int_not_equal(pst_fedkey_read_pair(path, &back, &err), PST_OK);

    /* never overwritten: both files stay as they were */
    pst_fedkey_pair_t other;
    assert_int_equal(pst_fedkey_generate(&other, NULL), PST_OK);
    assert_int_equal(pst_fedkey_write(&other, prefix, &err), PST_EIO);
    assert_non_null(strstr(err.msg, "not overwritten"));
    snprintf(path, sizeof path, "%s.key", prefix);
    assert_int_equal(pst_fedkey_read_pair(path, &back, NULL), PST_OK);
    assert_string_equal(back.public_key, kp.public_key);
}

static void secret_file_readable_by_others_is_refused(void **state)
{
    (void)state;
    pst_fedkey_pair_t kp;
    assert_int_equal(pst_fedkey_generate(&kp, NULL), PST_OK);
    char prefix[256], path[300];
    pst_scratch_path(prefix, "open");
    assert_int_equal(pst_fedkey_write(&kp, prefix, NULL), PST_OK);
    snprintf(path, sizeof path, "%s.key", prefix);
    assert_int_equal(chmod(path, 0644), 0);
    pst_err_t err = {0};
    assert_int_equal(pst_fedkey_read_pair(path, &kp, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
}

static void mismatched_public_key_is_refused(void **state)
{
    (void)state;
    pst_fedkey_pair_t a, b;
    assert_int_equal(pst_fedkey_generate(&a, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&b, NULL), PST_OK);
    char path[256], text[256];
    pst_scratch_path(path, "mixed.key");
    snprintf(text, sizeof text, "public: %s\nsecret: %s\n", b.public_key, a.secret_key);
    write_text(path, text);
    chmod(path, 0600);
    pst_err_t err = {0};
    assert_int_equal(pst_fedkey_read_pair(path, &a, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "does not match"));
}

static void allowed_list_from_file_and_directory(void **state)
{
    (void)state;
    pst_fedkey_pair_t a, b;
    assert_int_equal(pst_fedkey_generate(&a, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&b, NULL), PST_OK);
    char path[256], text[512];
    pst_scratch_path(path, "allowed.txt");
    snprintf(text, sizeof text, "# sites\n%s site-a\npublic: %s\n\n", a.public_key, b.public_key);
    write_text(path, text);
    pst_fedkey_list_t list = {0};
    assert_int_equal(pst_fedkey_list_load(&list, path, NULL), PST_OK);
    assert_int_equal(list.n, 2);
    assert_string_equal(pst_fedkey_list_find(&list, a.public_key)->site, "site-a");
    assert_string_equal(pst_fedkey_list_find(&list, b.public_key)->site, "");
    pst_fedkey_pair_t c;
    assert_int_equal(pst_fedkey_generate(&c, NULL), PST_OK);
    assert_null(pst_fedkey_list_find(&list, c.public_key));
    pst_fedkey_list_fini(&list);

    /* a directory of .pub files: each key bound to its file's name */
    char dir[256], prefix[300];
    pst_scratch_path(dir, "keys");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(prefix, sizeof prefix, "%s/hospital-1", dir);
    assert_int_equal(pst_fedkey_write(&c, prefix, NULL), PST_OK);
    char secret[320];
    snprintf(secret, sizeof secret, "%s.key", prefix);
    assert_int_equal(unlink(secret), 0); /* the scratch helper removes plain files only */
    assert_int_equal(pst_fedkey_list_load(&list, dir, NULL), PST_OK);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.items[0].site, "hospital-1");
    assert_string_equal(list.items[0].key, c.public_key);
    pst_fedkey_list_fini(&list);
    snprintf(secret, sizeof secret, "%s.pub", prefix);
    unlink(secret);
    rmdir(dir);
}

static void bad_allowed_lists_name_the_line(void **state)
{
    (void)state;
    char path[256];
    pst_scratch_path(path, "bad.txt");
    write_text(path, "# one bad key\nnot-a-key site-a\n");
    pst_fedkey_list_t list = {0};
    pst_err_t err = {0};
    assert_int_equal(pst_fedkey_list_load(&list, path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, ":2:"));
    pst_fedkey_list_fini(&list);

    write_text(path, "# nothing\n");
    assert_int_equal(pst_fedkey_list_load(&list, path, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "no public keys"));
    pst_fedkey_list_fini(&list);

    pst_fedkey_pair_t a;
    assert_int_equal(pst_fedkey_generate(&a, NULL), PST_OK);
    char text[256];
    snprintf(text, sizeof text, "%s bad/site\n", a.public_key);
    write_text(path, text);
    assert_int_equal(pst_fedkey_list_load(&list, path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "site id"));
    pst_fedkey_list_fini(&list);
    assert_false(pst_fedkey_valid("short"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pair_round_trips_with_mode_0600),
        cmocka_unit_test(secret_file_readable_by_others_is_refused),
        cmocka_unit_test(mismatched_public_key_is_refused),
        cmocka_unit_test(allowed_list_from_file_and_directory),
        cmocka_unit_test(bad_allowed_lists_name_the_line),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
