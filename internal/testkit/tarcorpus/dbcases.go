package tarcorpus

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// SHA256 is a placeholder package checksum: the hex sha256 of s.
func SHA256(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

// Desc is a desc file as repo-add writes it (the fields bintrans needs,
// plus an architecture and a build date), for package name at version.
func Desc(name, version string, extra ...string) string {
	s := "%FILENAME%\n" + name + "-" + version + "-any.pkg.tar.zst\n\n" +
		"%NAME%\n" + name + "\n\n" + "%BASE%\n" + name + "\n\n" + "%VERSION%\n" + version + "\n\n" +
		"%DESC%\ntest package " + name + "\n\n" + "%CSIZE%\n1234\n\n%ISIZE%\n4321\n\n" +
		"%SHA256SUM%\n" + SHA256(name+"-"+version) + "\n\n" + "%ARCH%\nany\n\n%BUILDDATE%\n1700000000\n\n"
	return s + strings.Join(extra, "")
}

// Override is a desc-style block that redirects package name-version to
// another file: what the hostile members of the corpus carry.
func Override(name, version string) string {
	evil := name + "-" + version + "-evil.pkg.tar.zst"
	return "%FILENAME%\n" + evil + "\n\n%SHA256SUM%\n" + SHA256(evil) + "\n\n"
}

// pkgEntries is one package as repo-add's bsdtar writes it.
func pkgEntries(name, version string, files bool) []byte {
	d := name + "-" + version
	out := Cat(Dir(d+"/"), File(d+"/desc", Desc(name, version)))
	if files {
		out = append(out, File(d+"/files", "%FILES%\nusr/\nusr/bin/\nusr/bin/"+name+"\n")...)
	}
	return out
}

// DBCases returns sync databases (uncompressed tar streams; compress them
// with Compress) that repodb must accept (Accept) or refuse: the database
// layer of libalpm's reading (a name/version taken from the directory,
// every key of desc, depends and files, last one winning, duplicate names
// merged) and the tar constructs of issue 16's two-faced database, each
// aimed at package foo 1.0-1.
func DBCases() []Case {
	good := Cat(pkgEntries("bar", "2.0-1", false), pkgEntries("foo", "1.0-1", false))
	goodFiles := Cat(pkgEntries("bar", "2.0-1", true), pkgEntries("foo", "1.0-1", true))
	db := func(parts ...[]byte) []byte { return Record(Cat(append(parts, End())...)) }
	ok := func(name, why string, data []byte) Case { return Case{Name: name, Data: data, Accept: true, Why: why} }
	no := func(name, why string, data []byte) Case { return Case{Name: name, Data: data, Why: why} }
	evil := func(name, why string, data []byte) Case {
		return Case{Name: name, Data: data, Why: why, Evil: "foo-1.0-1-evil.pkg.tar.zst"}
	}
	override := Override("foo", "1.0-1")
	fooFiles := func(body string) []byte { return File("foo-1.0-1/files", body) }
	smuggled := File("foo-1.0-1/files", "%FILES%\n\n"+override)
	return []Case{
		ok("db", "two packages, as repo-add writes them", db(good)),
		ok("files-db", "a .files database", db(goodFiles)),
		ok("files-empty-list", "a package without files", db(good, fooFiles("%FILES%\n"))),
		ok("files-before-desc", "bsdtar's directory order may put files first", db(Dir("foo-1.0-1/"), fooFiles("%FILES%\nusr/\n"), File("foo-1.0-1/desc", Desc("foo", "1.0-1")))),
		ok("files-percent-path", "a packaged file named like a key, inside the list", db(good, fooFiles("%FILES%\n%FILENAME%\nusr/\n"))),
		ok("no-dir-entries", "desc members without directory entries", db(File("foo-1.0-1/desc", Desc("foo", "1.0-1")))),
		ok("empty", "an empty database", make([]byte, 10240)),

		// The database layer (libalpm reads every key of desc, depends
		// and files; merges directories by package name).
		evil("b7-files-override", "a files member carrying %FILENAME% and %SHA256SUM% (bypass B7: pacman installed the evil file)", db(good, fooFiles(override))),
		evil("files-list-then-override", "an empty line ends libalpm's file list; the keys after it count", db(good, fooFiles("%FILES%\nusr/\n\n"+override))),
		no("files-no-final-newline", "a files list not ending in a newline", db(good, fooFiles("%FILES%\nusr/"))),
		no("files-control-char", "a control character in a file name", db(good, fooFiles("%FILES%\nusr/\rbin\n"))),
		no("files-nul", "a NUL ends a line for libalpm's reader", db(good, fooFiles("%FILES%\nusr/\x00%FILENAME%\n"))),
		evil("depends-override", "the pre-4.2 depends member, carrying desc keys", db(good, File("foo-1.0-1/depends", override))),
		{Name: "b8-second-directory", Why: "a second directory for foo (libalpm keeps the first version, takes the later keys)",
			Data: db(good, pkgEntries("foo", "6.6-1", false)), Evil: "foo-6.6-1-any.pkg.tar.zst"},
		no("second-directory-files-only", "a second directory for foo holding only a files member", db(good, Dir("foo-6.6-1/"), File("foo-6.6-1/files", "%FILES%\nusr/\n"))),
		no("directory-mismatch", "a desc describing foo in bar's directory (libalpm: bar, with foo's keys)", db(Dir("bar-2.0-1/"), File("bar-2.0-1/desc", Desc("foo", "1.0-1")))),
		evil("desc-duplicate-key", "%FILENAME% twice in a desc (libalpm: the last one)", db(File("foo-1.0-1/desc", Desc("foo", "1.0-1", override)))),
		no("desc-nul", "a NUL inside a desc value", db(File("foo-1.0-1/desc", strings.Replace(Desc("foo", "1.0-1"), "test package", "test\x00package", 1)))),
		no("desc-cr", "a carriage return after a key (libalpm keeps it)", db(File("foo-1.0-1/desc", strings.Replace(Desc("foo", "1.0-1"), "%DESC%\n", "%DESC%\r\n", 1)))),
		evil("nested-member", "foo-1.0-1/x/desc: libalpm takes the name after the last / as the member", db(good, File("foo-1.0-1/x/desc", Desc("foo", "1.0-1", override)))),
		no("top-level-member", "a member outside any directory", db(good, File("desc", Desc("foo", "1.0-1")))),
		no("unknown-member", "a member other than desc and files", db(good, File("foo-1.0-1/install", "post_install() { :; }\n"))),
		no("duplicate-desc", "the same desc member twice", db(good, File("foo-1.0-1/desc", Desc("foo", "1.0-1")))),

		// The tar layer: two-faced databases (issue 16, bypass 1).
		evil("pax-path-then-L", "libarchive names the member by the pax path (foo's files, with the override), Go by the GNU long name", db(good,
			Pax("path", "foo-1.0-1/files"), Ext('L', "././@LongLink", []byte("bar-2.0-1/files\x00")), File("bar-2.0-1/files", override))),
		evil("L-then-pax-path", "the other order", db(good,
			Ext('L', "././@LongLink", []byte("foo-1.0-1/files\x00")), Pax("path", "bar-2.0-1/files"), File("bar-2.0-1/files", override))),
		evil("ustarX-prefix", "magic ustarX: libarchive reads foo-1.0-1/bar-2.0-1/files (foo's), Go reads bar-2.0-1/files", db(good,
			FileH(Hdr{Name: "bar-2.0-1/files", Prefix: "foo-1.0-1", Magic: "ustarX"}, override))),
		evil("gnu-magic-prefix", "GNU magic: libarchive ignores the prefix, Go joins it", db(good,
			FileH(Hdr{Name: "foo-1.0-1/files", Prefix: "bar-2.0-1", Magic: "ustar ", Version: " \x00"}, override))),
		evil("reg-slash-smuggles", "a regular file named x/ whose body libarchive reads as headers", db(good,
			Hdr{Name: "bar-2.0-1/", Size: int64(len(smuggled))}.Block(), smuggled)),
		evil("dir-body-smuggles", "a directory with a size: libarchive reads its body as headers", db(pkgEntries("foo", "1.0-1", false),
			Hdr{Name: "bar-2.0-1/", Typeflag: '5', Size: int64(len(smuggled))}.Block(), smuggled, File("bar-2.0-1/desc", Desc("bar", "2.0-1")))),
		no("zero-block-then-member", "a member behind a single zero block: libarchive never sees it", db(good, make([]byte, 512), smuggled)),
		no("signed-checksum", "a header only the signed checksum validates", db(good, FileH(Hdr{Name: "foo-1.0-1/files", Checksum: "signed", Edit: func(b []byte) { copy(b[265:297], "r\xe9ot") }}, "%FILES%\nusr/\n"))),
	}
}
