/* Scratch directory and files for the unit tests. */
#include "scratch.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

enum { MAX_FILES = 128, PATH_LEN = 256 };

static char dir[64];
static char files[MAX_FILES][PATH_LEN];
static int n_files;

const char *pst_scratch_dir(void)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/pst_test_XXXXXX");
        assert_non_null(mkdtemp(dir));
    }
    return dir;
}

int pst_scratch_make(void **state)
{
    pst_scratch_dir();
    return 0;
}

int pst_scratch_remove(void **state)
{
    if (dir[0] == '\0')
        return 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_LEN + 64];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    dir[0] = '\0';
    n_files = 0;
    return 0;
}

const char *pst_scratch_path(char *buf, const char *name)
{
    snprintf(buf, PATH_LEN, "%s/%s", pst_scratch_dir(), name);
    return buf;
}

const char *pst_scratch_file(const char *suffix, const char *text)
{
    assert_true(n_files < MAX_FILES);
    char *path = files[n_files++];
    snprintf(path, PATH_LEN, "%s/f_XXXXXX%s", pst_scratch_dir(), suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}
