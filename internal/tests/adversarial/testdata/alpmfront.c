/* alpmfront: a minimal libalpm front-end, as pamac and other programs that
 * call libalpm directly are: no pacman, no pacman command line. Built by
 * TestHookOtherLibalpmFrontend with gcc against Debian's libalpm-dev 13.
 *
 *   alpmfront --root R --dbpath D --cachedir C --hookdir H --logfile L
 *             --server REPO=URL... sync NAME...     (refresh, then install)
 *   alpmfront ... local FILE...                     (alpm_pkg_load + alpm_add_pkg)
 *
 * Signature checking is off (SigLevel = Never, as in the test sandbox):
 * bintrans, not pacman's keyring, is what the test exercises. Hooks run
 * during alpm_trans_commit; their output arrives as scriptlet events and
 * is printed on stdout, like pacman does. Exit 0 when the transaction was
 * committed, 1 otherwise. */
#include <alpm.h>
#include <alpm_list.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void logcb(void *ctx, alpm_loglevel_t level, const char *fmt, va_list args)
{
	(void)ctx;
	if(level & (ALPM_LOG_ERROR | ALPM_LOG_WARNING)) {
		vfprintf(stderr, fmt, args);
	}
}

static void eventcb(void *ctx, alpm_event_t *event)
{
	(void)ctx;
	switch(event->type) {
	case ALPM_EVENT_HOOK_RUN_START:
		printf("(%zu/%zu) %s\n", event->hook_run.position, event->hook_run.total,
				event->hook_run.desc ? event->hook_run.desc : event->hook_run.name);
		break;
	case ALPM_EVENT_SCRIPTLET_INFO:
		fputs(event->scriptlet_info.line, stdout);
		break;
	default:
		break;
	}
	fflush(stdout);
}

static int fail(alpm_handle_t *h, const char *what)
{
	fprintf(stderr, "alpmfront: %s: %s\n", what, alpm_strerror(alpm_errno(h)));
	return 1;
}

int main(int argc, char **argv)
{
	const char *root = NULL, *dbpath = NULL, *cachedir = NULL, *hookdir = NULL, *logfile = NULL;
	const char *servers[16];
	int nservers = 0, i;
	alpm_errno_t err;

	for(i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if(!strcmp(argv[i], "--root")) root = argv[i + 1];
		else if(!strcmp(argv[i], "--dbpath")) dbpath = argv[i + 1];
		else if(!strcmp(argv[i], "--cachedir")) cachedir = argv[i + 1];
		else if(!strcmp(argv[i], "--hookdir")) hookdir = argv[i + 1];
		else if(!strcmp(argv[i], "--logfile")) logfile = argv[i + 1];
		else if(!strcmp(argv[i], "--server") && nservers < 16) servers[nservers++] = argv[i + 1];
		else {
			fprintf(stderr, "alpmfront: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if(!root || !dbpath || !cachedir || i + 1 >= argc ||
			(strcmp(argv[i], "sync") != 0 && strcmp(argv[i], "local") != 0)) {
		fprintf(stderr, "usage: alpmfront --root R --dbpath D --cachedir C [--hookdir H] [--logfile L] [--server REPO=URL]... sync|local TARGET...\n");
		return 2;
	}
	int local = !strcmp(argv[i], "local");
	i++;

	alpm_handle_t *h = alpm_initialize(root, dbpath, &err);
	if(!h) {
		fprintf(stderr, "alpmfront: alpm_initialize: %s\n", alpm_strerror(err));
		return 1;
	}
	alpm_option_set_logcb(h, logcb, NULL);
	alpm_option_set_eventcb(h, eventcb, NULL);
	alpm_option_add_cachedir(h, cachedir);
	if(hookdir) alpm_option_add_hookdir(h, hookdir);
	if(logfile) alpm_option_set_logfile(h, logfile);
	alpm_option_set_default_siglevel(h, 0);
	alpm_option_set_local_file_siglevel(h, 0);

	alpm_list_t *dbs = NULL;
	for(int s = 0; s < nservers; s++) {
		char name[256];
		const char *eq = strchr(servers[s], '=');
		if(!eq || (size_t)(eq - servers[s]) >= sizeof(name)) return 2;
		memcpy(name, servers[s], eq - servers[s]);
		name[eq - servers[s]] = '\0';
		alpm_db_t *db = alpm_register_syncdb(h, name, 0);
		if(!db) return fail(h, "alpm_register_syncdb");
		alpm_db_add_server(db, eq + 1);
		dbs = alpm_list_add(dbs, db);
	}
	if(!local && alpm_db_update(h, dbs, 1) < 0) {
		return fail(h, "alpm_db_update");
	}

	if(alpm_trans_init(h, 0) != 0) return fail(h, "alpm_trans_init");
	for(; i < argc; i++) {
		alpm_pkg_t *pkg = NULL;
		if(local) {
			if(alpm_pkg_load(h, argv[i], 1, 0, &pkg) != 0) return fail(h, argv[i]);
		} else {
			pkg = alpm_find_dbs_satisfier(h, alpm_get_syncdbs(h), argv[i]);
			if(!pkg) {
				fprintf(stderr, "alpmfront: target not found: %s\n", argv[i]);
				return 1;
			}
		}
		if(alpm_add_pkg(h, pkg) != 0) return fail(h, "alpm_add_pkg");
	}
	alpm_list_t *data = NULL;
	if(alpm_trans_prepare(h, &data) != 0) return fail(h, "alpm_trans_prepare");
	if(alpm_trans_commit(h, &data) != 0) {
		fail(h, "alpm_trans_commit");
		alpm_trans_release(h);
		alpm_release(h);
		return 1;
	}
	alpm_trans_release(h);
	alpm_list_free(dbs);
	alpm_release(h);
	return 0;
}
