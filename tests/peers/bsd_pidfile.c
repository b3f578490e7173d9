/* A peer that uses BSD pidfile(3), through libbsd, for the interoperability tests.
 *
 *   bsd_pidfile hold PATH   claims PATH, prints "ready PID", holds it until standard input closes, removes it
 *   bsd_pidfile try PATH    tries to claim PATH; prints "claimed" (and removes it again) or
 *                           "refused ERRNO-NAME OTHER-PID" when pidfile_open fails
 *   bsd_pidfile probe PATH  the same, without asking pidfile_open for the other pid (a null pidptr), so that
 *                           the holder's file is not read: prints "claimed" or "refused ERRNO-NAME"
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *errno_name(int error) {
    switch (error) {
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    default: return strerror(error);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bsd_pidfile hold|try|probe PATH\n");
        return 2;
    }
    int probe = strcmp(argv[1], "probe") == 0;
    pid_t other = 0;
    struct pidfh *pfh = pidfile_open(argv[2], 0644, probe ? NULL : &other);
    if (pfh == NULL) {
        if (probe)
            printf("refused %s\n", errno_name(errno));
        else
            printf("refused %s %ld\n", errno_name(errno), (long)other);
        return 3;
    }
    if (strcmp(argv[1], "try") == 0 || probe) {
        printf("claimed\n");
        pidfile_remove(pfh);
        return 0;
    }
    if (pidfile_write(pfh) != 0) {
        printf("write failed %s\n", strerror(errno));
        pidfile_remove(pfh);
        return 4;
    }
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    char buffer[64];
    while (read(0, buffer, sizeof buffer) > 0) {
    }
    pidfile_remove(pfh);
    return 0;
}
