/*
 * oracle: the real libarchive and libalpm as a test oracle for bintrans's
 * strict tar and sync-database readers (internal/testkit/laoracle builds
 * and drives it; nothing here is product code).
 *
 * It reads requests from stdin, each a line followed by <len> bytes of
 * input, which it writes to a file in its own temporary directory (removed
 * with everything libalpm created in it when stdin ends), and answers each on stdout with records ending in
 * "END <0|1>" (1: libalpm would refuse the input):
 *
 *   A <len>             walk the input exactly as libalpm opens
 *                       packages and sync databases (_alpm_open_archive:
 *                       archive_read_support_filter_all +
 *                       archive_read_support_format_all, open(2) +
 *                       archive_read_open_fd with max(BUFSIZ, st_blksize);
 *                       the loop of sync_db_populate/_alpm_pkg_load_internal:
 *                       stop at the first header rc other than ARCHIVE_OK,
 *                       which is an error unless it is ARCHIVE_EOF).
 *     ENTRY <format> <type> <size> <name> <hardlink> <symlink> <data>
 *     RC <rc> <error>     the header rc that ended the walk (not EOF)
 *     DATAERR <error>
 *     OPENFAIL <error>
 *     FILTERS <name>...
 *   D <ext> <len>       load the input as <dbpath>/sync/t<ext> with libalpm
 *                       (alpm_register_syncdb, alpm_db_get_pkgcache), as
 *                       pacman -S does; <ext> is ".db" or ".files".
 *     PKG <name> <version> <filename> <sha256> <md5> <pgpsig> <base> <arch>
 *         <desc> <url> <packager> <csize> <isize> <builddate>
 *     LIST <pkgname> <kind> <value>...   kind: groups licenses depends
 *         optdepends makedepends checkdepends conflicts provides replaces files
 *     LOG <level> <message>              libalpm's errors and warnings
 *   P <len>             load the input as a package file with libalpm
 *                       (alpm_pkg_load, full, no signature check), as
 *                       pacman -U does.
 *     FILEPKG <name> <version> <arch>
 *     PKGFAIL <error>
 *
 * Strings are "-" for NULL, else "x" followed by the bytes in hex ("x" is
 * the empty string), so nothing needs escaping.
 */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <alpm.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hexn(const void *p, size_t n) {
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	putchar('x');
	for (size_t i = 0; i < n; i++) {
		putchar(digits[b[i] >> 4]);
		putchar(digits[b[i] & 15]);
	}
}

static void hexs(const char *s) {
	if (s == NULL) {
		putchar('-');
		return;
	}
	hexn(s, strlen(s));
}

static int walk(const char *path) {
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct stat st;
	size_t bufsize = BUFSIZ;
	int bad = 0, r;
	size_t cap = 1 << 16, len;
	char *data = malloc(cap);

	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		printf("OPENFAIL ");
		hexs(strerror(errno));
		putchar('\n');
		bad = 1;
		goto out;
	}
	if ((size_t)st.st_blksize > bufsize)
		bufsize = st.st_blksize;
	if (archive_read_open_fd(a, fd, bufsize) != ARCHIVE_OK) {
		printf("OPENFAIL ");
		hexs(archive_error_string(a));
		putchar('\n');
		bad = 1;
		goto out;
	}
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			printf("RC %d ", r);
			hexs(archive_error_string(a));
			putchar('\n');
			bad = 1;
			break;
		}
		len = 0;
		ssize_t n;
		for (;;) {
			if (cap - len < 1 << 16) {
				cap *= 2;
				data = realloc(data, cap);
			}
			n = archive_read_data(a, data + len, cap - len);
			if (n <= 0)
				break;
			len += n;
		}
		printf("ENTRY ");
		hexs(archive_format_name(a));
		printf(" %o %lld ", archive_entry_filetype(e) >> 12, (long long)archive_entry_size(e));
		hexs(archive_entry_pathname(e));
		putchar(' ');
		hexs(archive_entry_hardlink(e));
		putchar(' ');
		hexs(archive_entry_symlink(e));
		putchar(' ');
		hexn(data, len);
		putchar('\n');
		if (n < 0) {
			printf("DATAERR ");
			hexs(archive_error_string(a));
			putchar('\n');
			bad = 1;
			break;
		}
	}
	printf("FILTERS");
	for (int i = 0; i < archive_filter_count(a); i++) {
		putchar(' ');
		hexs(archive_filter_name(a, i));
	}
	putchar('\n');
out:
	archive_read_free(a);
	if (fd >= 0)
		close(fd);
	free(data);
	return bad;
}

static int load_failed;

static void logcb(void *ctx, alpm_loglevel_t level, const char *fmt, va_list args) {
	char *msg = NULL;
	(void)ctx;
	if (vasprintf(&msg, fmt, args) < 0)
		return;
	if (strncmp(msg, "failed to load package cache", 28) == 0)
		load_failed = 1;
	if (level & (ALPM_LOG_ERROR | ALPM_LOG_WARNING)) {
		printf("LOG %d ", (int)level);
		hexs(msg);
		putchar('\n');
	}
	free(msg);
}

static void list(alpm_pkg_t *p, const char *kind, alpm_list_t *l, int deps) {
	printf("LIST ");
	hexs(alpm_pkg_get_name(p));
	printf(" %s", kind);
	for (; l; l = l->next) {
		putchar(' ');
		if (deps) {
			char *s = alpm_dep_compute_string(l->data);
			hexs(s);
			free(s);
		} else {
			hexs(l->data);
		}
	}
	putchar('\n');
}

static int syncdb(const char *dbpath, const char *ext) {
	alpm_errno_t err;
	alpm_handle_t *h = alpm_initialize("/", dbpath, &err);
	if (h == NULL) {
		printf("INITFAIL ");
		hexs(alpm_strerror(err));
		putchar('\n');
		return 1;
	}
	load_failed = 0;
	alpm_option_set_logcb(h, logcb, NULL);
	alpm_option_set_dbext(h, ext);
	alpm_db_t *db = alpm_register_syncdb(h, "t", 0);
	int bad = 0;
	if (db == NULL) {
		printf("DBFAIL ");
		hexs(alpm_strerror(alpm_errno(h)));
		putchar('\n');
		bad = 1;
		goto out;
	}
	alpm_list_t *pkgs = alpm_db_get_pkgcache(db);
	if (pkgs == NULL && (load_failed || alpm_errno(h) != 0)) {
		printf("DBFAIL ");
		hexs(alpm_strerror(alpm_errno(h)));
		putchar('\n');
		bad = 1;
		goto out;
	}
	for (alpm_list_t *i = pkgs; i; i = i->next) {
		alpm_pkg_t *p = i->data;
		printf("PKG ");
		hexs(alpm_pkg_get_name(p)); putchar(' ');
		hexs(alpm_pkg_get_version(p)); putchar(' ');
		hexs(alpm_pkg_get_filename(p)); putchar(' ');
		hexs(alpm_pkg_get_sha256sum(p)); putchar(' ');
		hexs(alpm_pkg_get_md5sum(p)); putchar(' ');
		hexs(alpm_pkg_get_base64_sig(p)); putchar(' ');
		hexs(alpm_pkg_get_base(p)); putchar(' ');
		hexs(alpm_pkg_get_arch(p)); putchar(' ');
		hexs(alpm_pkg_get_desc(p)); putchar(' ');
		hexs(alpm_pkg_get_url(p)); putchar(' ');
		hexs(alpm_pkg_get_packager(p));
		printf(" %lld %lld %lld\n", (long long)alpm_pkg_get_size(p), (long long)alpm_pkg_get_isize(p),
			(long long)alpm_pkg_get_builddate(p));
		list(p, "groups", alpm_pkg_get_groups(p), 0);
		list(p, "licenses", alpm_pkg_get_licenses(p), 0);
		list(p, "depends", alpm_pkg_get_depends(p), 1);
		list(p, "optdepends", alpm_pkg_get_optdepends(p), 1);
		list(p, "makedepends", alpm_pkg_get_makedepends(p), 1);
		list(p, "checkdepends", alpm_pkg_get_checkdepends(p), 1);
		list(p, "conflicts", alpm_pkg_get_conflicts(p), 1);
		list(p, "provides", alpm_pkg_get_provides(p), 1);
		list(p, "replaces", alpm_pkg_get_replaces(p), 1);
		alpm_filelist_t *fl = alpm_pkg_get_files(p);
		printf("LIST ");
		hexs(alpm_pkg_get_name(p));
		printf(" files");
		for (size_t j = 0; fl && j < fl->count; j++) {
			putchar(' ');
			hexs(fl->files[j].name);
		}
		putchar('\n');
	}
out:
	alpm_release(h);
	return bad;
}

static int pkgload(const char *dbpath, const char *path) {
	alpm_errno_t err;
	alpm_pkg_t *p = NULL;
	alpm_handle_t *h = alpm_initialize("/", dbpath, &err);
	if (h == NULL) {
		printf("INITFAIL ");
		hexs(alpm_strerror(err));
		putchar('\n');
		return 1;
	}
	alpm_option_set_logcb(h, logcb, NULL);
	int bad = alpm_pkg_load(h, path, 1, 0, &p) != 0 || p == NULL;
	if (bad) {
		printf("PKGFAIL ");
		hexs(alpm_strerror(alpm_errno(h)));
		putchar('\n');
	} else {
		printf("FILEPKG ");
		hexs(alpm_pkg_get_name(p)); putchar(' ');
		hexs(alpm_pkg_get_version(p)); putchar(' ');
		hexs(alpm_pkg_get_arch(p)); putchar('\n');
		alpm_pkg_free(p);
	}
	alpm_release(h);
	return bad;
}

/* save copies len bytes of stdin to path. */
static int save(const char *path, size_t len) {
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	char buf[1 << 16];
	while (len > 0) {
		size_t k = fread(buf, 1, len < sizeof buf ? len : sizeof buf, stdin);
		if (k == 0)
			break;
		fwrite(buf, 1, k, f);
		len -= k;
	}
	return fclose(f) == 0 && len == 0 ? 0 : -1;
}

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int main(void) {
	char dir[] = "/tmp/bintrans-laoracle-XXXXXX", input[64], sync[64], db[80];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(input, sizeof input, "%s/input", dir);
	snprintf(sync, sizeof sync, "%s/sync", dir);
	mkdir(sync, 0755);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		char ext[16];
		unsigned long long len;
		int bad;
		if (sscanf(line, "A %llu", &len) == 1) {
			bad = save(input, len) != 0 || walk(input);
			unlink(input);
		} else if (sscanf(line, "D %15s %llu", ext, &len) == 2 && (strcmp(ext, ".db") == 0 || strcmp(ext, ".files") == 0)) {
			snprintf(db, sizeof db, "%s/t%s", sync, ext);
			bad = save(db, len) != 0 || syncdb(dir, ext);
			unlink(db);
		} else if (sscanf(line, "P %llu", &len) == 1) {
			bad = save(input, len) != 0 || pkgload(dir, input);
			unlink(input);
		} else {
			printf("ERROR bad request\n");
			bad = 1;
		}
		printf("END %d\n", bad);
		fflush(stdout);
	}
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS); /* libalpm leaves local/ behind */
	free(line);
	return 0;
}
