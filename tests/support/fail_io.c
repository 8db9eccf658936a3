/* I/O errors on demand, for the end-to-end tests (LD_PRELOAD): calls of
 * FAIL_IO_CALL ("fsync": fsync and fdatasync; "write": write, pwrite,
 * writev) on files under the directory FAIL_IO_UNDER fail with EIO once
 * FAIL_IO_AFTER of them have succeeded. Everything else (sockets, the
 * state database, stderr) is left alone. The disk itself is real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long matched;

/* Whether this call on fd, of kind `call`, must fail. */
static int must_fail(int fd, const char *call) {
    const char *want = getenv("FAIL_IO_CALL");
    const char *under = getenv("FAIL_IO_UNDER");
    const char *after = getenv("FAIL_IO_AFTER");
    if (!want || !under || !after || strcmp(want, call) != 0)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    size_t len = strlen(under);
    if (strncmp(path, under, len) != 0 || (path[len] != '/' && path[len] != 0))
        return 0;
    return __atomic_add_fetch(&matched, 1, __ATOMIC_SEQ_CST) > atol(after);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int fsync(int fd) {
    if (must_fail(fd, "fsync")) {
        errno = EIO;
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd) {
    if (must_fail(fd, "fsync")) {
        errno = EIO;
        return -1;
    }
    return REAL(fdatasync)(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return REAL(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return REAL(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return REAL(writev)(fd, iov, iovcnt);
}
