/* Claim-and-release cycles of the peers, timed in-process, for the side-by-side comparison (benches/compare.rs).
 *
 *   cycle libbsd  N PATH   pidfile_open + pidfile_write + pidfile_remove, N times
 *   cycle minimal N PATH   open, flock, fstat, fstatat, pwrite, unlink, close: the floor of a locked pidfile
 *
 * Prints the mean nanoseconds per cycle.
 */
#include <bsd/libutil.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: cycle libbsd|minimal N PATH\n");
        return 2;
    }
    long n = atol(argv[2]);
    const char *path = argv[3];
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    double start = now_ns();
    if (strcmp(argv[1], "libbsd") == 0) {
        for (long i = 0; i < n; i++) {
            pid_t other;
            struct pidfh *pfh = pidfile_open(path, 0644, &other);
            if (pfh == NULL || pidfile_write(pfh) != 0 || pidfile_remove(pfh) != 0) {
                perror("libbsd cycle");
                return 1;
            }
        }
    } else {
        for (long i = 0; i < n; i++) {
            struct stat by_fd, by_path;
            int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644);
            if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &by_fd) != 0 ||
                fstatat(AT_FDCWD, path, &by_path, AT_SYMLINK_NOFOLLOW) != 0 || pwrite(fd, text, len, 0) != len ||
                unlink(path) != 0 || close(fd) != 0) {
                perror("minimal cycle");
                return 1;
            }
        }
    }
    printf("%.1f\n", (now_ns() - start) / (double)n);
    return 0;
}
