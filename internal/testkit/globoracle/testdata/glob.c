/* glob(3) as pacman 6.0.2 calls it for `Include = PATTERN` (src/pacman/
 * conf.c process_include: glob(value, GLOB_NOCHECK, NULL, &globbuf)), in
 * the locale of the environment (pacman calls setlocale(LC_ALL, "")).
 *
 * Protocol, one query after another on stdin: a line "<length>\n", then
 * <length> bytes of pattern. Answer on stdout: "RC <glob's return>\n", one
 * "PATH <hex>\n" per result in glob's order, then "END\n". */
#include <glob.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	char hdr[64];
	setlocale(LC_ALL, "");
	while(fgets(hdr, sizeof(hdr), stdin)) {
		size_t n = strtoul(hdr, NULL, 10), i;
		char *pat = malloc(n + 1);
		glob_t g;
		int rc;
		if(pat == NULL || fread(pat, 1, n, stdin) != n) {
			return 1;
		}
		pat[n] = '\0';
		memset(&g, 0, sizeof(g));
		rc = glob(pat, GLOB_NOCHECK, NULL, &g);
		printf("RC %d\n", rc);
		if(rc == 0) {
			for(i = 0; i < g.gl_pathc; i++) {
				const unsigned char *p;
				fputs("PATH ", stdout);
				for(p = (const unsigned char *)g.gl_pathv[i]; *p; p++) {
					printf("%02x", *p);
				}
				putchar('\n');
			}
		}
		puts("END");
		fflush(stdout);
		globfree(&g);
		free(pat);
	}
	return 0;
}
