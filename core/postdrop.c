/*
 * core/postdrop.c - merpati-postdrop, the one setgid program of merpati
 * (group merpatidrop, mode 2755; see core/maildrop.h and
 * docs/security.md). An unprivileged `sendmail` runs it as
 *
 *     merpati-postdrop MAILDROP_DIR < drop-stream
 *
 * It writes "U <real uid>\n" and then its standard input into a new
 * file of that directory, first as tNNN, renamed to dNNN once complete
 * and synced (the name too), and exits 0; on failure it removes what it wrote and
 * exits with a sysexits.h status. It reads no configuration and links
 * nothing of the daemon: the group gives it the right to create files
 * in the maildrop, and the uid it records is the kernel's, so a user
 * cannot claim to be someone else. Everything else in the file is the
 * user's and the daemon checks it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* More than any limits.message_size a server would set: only a bound
 * on what one run may write before the daemon judges the file. */
#define MAX_DROP (1LL << 30)

/* Read by AddressSanitizer in a sanitized build (make SANITIZE=1) and
 * unused otherwise: LeakSanitizer cannot inspect a setgid, hence
 * non-dumpable, process and would fail every run; ASan's other checks
 * stay on. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

static int
fail(int status, const char *what)
{
	fprintf(stderr, "merpati-postdrop: %s: %s\n", what, strerror(errno));
	return status;
}

/* Descriptors 0-2 open, so a file we open never becomes stderr. */
static void
sane_fds(void)
{
	struct stat st;

	for (int fd = 0; fd < 3; fd++)
		if (fstat(fd, &st) < 0 && open("/dev/null", O_RDWR) != fd)
			_exit(EX_OSERR);
}

/* The maildrop: a sticky directory of our (set) group. O_PATH: the
 * group may create entries there but not list it. */
static int
open_maildrop(const char *path)
{
	struct stat st;
	int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0)
		return -1;
	if (fstat(dir, &st) < 0 || !(st.st_mode & S_ISVTX) ||
	    st.st_gid != getegid() || (st.st_mode & S_IRWXO)) {
		close(dir);
		errno = EPERM;
		return -1;
	}
	return dir;
}

static int
copy_stdin(int out)
{
	char buf[65536];
	long long total = 0;
	ssize_t n;

	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if ((total += n) > MAX_DROP) {
			errno = EFBIG;
			return -1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				return -1;
			off += w > 0 ? w : 0;
		}
	}
	return 0;
}

/* The file tmp written and synced; its fd (kept open for the syncfs()
 * after the rename), or -1. */
static int
write_file(int dir, const char *tmp)
{
	char head[32];
	int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	int len = snprintf(head, sizeof(head), "U %ld\n", (long)getuid());

	if (fd < 0)
		return -1;
	/* 0644 whatever the umask: the daemon reads it as "other"; nobody
	 * else can reach inside the 1730 directory. */
	if (fchmod(fd, 0644) < 0 || write(fd, head, (size_t)len) != len ||
	    copy_stdin(fd) < 0 || fsync(fd) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* tmp renamed to final, durably: the group may create files in the
 * maildrop but not read it, so the directory cannot be opened to
 * fsync(); syncfs() through the file's own descriptor covers the new
 * name too. 0, or -1 with errno. */
static int
publish(int dir, int fd, const char *tmp, const char *final)
{
	int rc = renameat(dir, tmp, dir, final) < 0 || syncfs(fd) < 0 ? -1 : 0;
	int saved = errno;

	close(fd);
	errno = saved;
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned char r[8];
	char tmp[24], final[24];
	int dir;

	sane_fds();
	signal(SIGPIPE, SIG_IGN);
	if (argc != 2) {
		fputs("usage: merpati-postdrop MAILDROP_DIR < message\n", stderr);
		return EX_USAGE;
	}
	if ((dir = open_maildrop(argv[1])) < 0) {
		fprintf(stderr, "merpati-postdrop: cannot use %s: %s (it is made by "
		    "merpatid at start when the group merpatidrop exists; this "
		    "program must be setgid merpatidrop)\n", argv[1], strerror(errno));
		return EX_CONFIG;
	}
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return fail(EX_OSERR, "getrandom");
	for (int i = 0; i < 8; i++)
		sprintf(tmp + 1 + 2 * i, "%02x", r[i]);
	tmp[0] = 't';
	snprintf(final, sizeof(final), "d%s", tmp + 1);
	int fd = write_file(dir, tmp);
	if (fd < 0 || publish(dir, fd, tmp, final) < 0) {
		int saved = errno;
		unlinkat(dir, tmp, 0);
		errno = saved;
		return fail(EX_TEMPFAIL, "cannot write to the maildrop");
	}
	return 0;
}
