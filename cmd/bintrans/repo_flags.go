package main

import "github.com/bintrans/bintrans/internal/scan"

// RepoFlags name sync databases the way a pacman.conf Server line does: a
// mirror URL template with $repo and $arch, and the repositories and
// architectures to substitute. scan and audit share them.
type RepoFlags struct {
	RepoURL      string   `name:"repo-url" placeholder:"URL" help:"Mirror URL template with $$repo and $$arch, as in a pacman.conf Server line; the databases are <URL>/<repo>.db for each --repo-name and --architecture."`
	RepoName     []string `name:"repo-name" placeholder:"NAME" sep:"none" help:"Repository with --repo-url. Repeatable."`
	Architecture []string `name:"architecture" placeholder:"ARCH" sep:"none" help:"Architecture with --repo-url (default x86_64). Repeatable."`
}

// databases lists the databases given by location (path, file:// or
// http(s):// URL) and then those of --repo-url, in the order given.
// flagName names the locations in error messages.
func (f *RepoFlags) databases(flagName string, locs []string) ([]scan.DB, error) {
	var dbs []scan.DB
	for _, loc := range locs {
		db, err := scan.FromLocation(loc)
		if err != nil {
			return nil, usageErrorf("give the path or URL of a sync database file such as core.db or extra.files", "%s: %v", flagName, err)
		}
		dbs = append(dbs, db)
	}
	switch {
	case f.RepoURL != "":
		if len(f.RepoName) == 0 {
			return nil, usageErrorf("add --repo-name NAME for each repository, e.g. --repo-name core", "--repo-url without --repo-name")
		}
		arches := f.Architecture
		if len(arches) == 0 {
			arches = []string{"x86_64"}
		}
		for _, n := range append(append([]string(nil), f.RepoName...), arches...) {
			if _, err := scan.RepoName(n + ".db"); err != nil || n == "" {
				return nil, usageErrorf("", "--repo-name/--architecture %q is not a plain name", n)
			}
		}
		dbs = append(dbs, scan.FromTemplate(f.RepoURL, f.RepoName, arches)...)
	case len(f.RepoName) > 0 || len(f.Architecture) > 0:
		return nil, usageErrorf("add --repo-url 'https://mirror/$repo/os/$arch'", "--repo-name and --architecture need --repo-url")
	}
	return dbs, nil
}
