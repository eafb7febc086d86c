package tarcorpus

import "strings"

// TarCases returns the tar-level corpus (uncompressed archives): what the
// strict reader (internal/ustar) must accept, and every construct it must
// refuse.
func TarCases() []Case {
	inner := File("smuggled/desc", "S\n")
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("f", 60) // needs the prefix field
	ok := func(name, why string, data []byte) Case { return Case{Name: name, Data: data, Accept: true, Why: why} }
	no := func(name, why string, data []byte) Case { return Case{Name: name, Data: data, Why: why} }
	return []Case{
		// Accepted: what repo-add and makepkg write.
		ok("plain", "a directory and a file, bsdtar's field formats", Cat(Dir("a/"), File("a/desc", "A\n"), End())),
		ok("plain-record", "padded to a 10240-byte record, as bsdtar does", Record(Cat(Dir("a/"), File("a/desc", "A\n"), End()))),
		ok("empty", "an empty archive (repo-add after removing the last package)", make([]byte, 10240)),
		ok("go-formats", "numbers as GNU tar and Go write them (7 digits and NUL)", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) {
			copy(b[100:108], "0000644\x00")
			copy(b[108:116], "0000000\x00")
			copy(b[124:136], "00000000002\x00")
			copy(b[329:345], make([]byte, 16))
		}}, "A\n"), End())),
		ok("prefix", "a long path split into prefix and name (makepkg packages)", Cat(FileH(Hdr{Name: long[91:], Prefix: long[:90]}, "L\n"), End())),
		ok("pax-ids", "bsdtar's pax header for a uid/gid above 2097151", Cat(Pax("gid", "3000000", "mtime", "1700000000.123456789", "uid", "3000000"), File("a/desc", "A\n"), End())),
		ok("pax-path-equal", "a pax path equal to the header's name", Cat(Pax("path", "a/desc"), File("a/desc", "A\n"), End())),
		ok("pax-path-equal-prefix", "a pax path equal to prefix/name", Cat(Pax("path", long), FileH(Hdr{Name: long[91:], Prefix: long[:90]}, "L\n"), End())),
		ok("non-ascii-name", "raw bytes in a ustar name: no reader converts them", Cat(File("a/\xe9desc", "A\n"), End())),
		ok("duplicate-entries", "both readers list both (the database layer refuses duplicates)", Cat(File("a/desc", "A\n"), File("a/desc", "B\n"), End())),
		ok("big-content", "content over several blocks", Cat(File("a/files", strings.Repeat("usr/lib/x\n", 300)), End())),

		// Refused: extension headers (issue 16, bypass 1).
		no("pax-path-then-L", "libarchive: pax path (outermost); Go: GNU long name", Cat(Pax("path", "pax/desc"), Ext('L', "././@LongLink", []byte("gnu/desc\x00")), File("hdr/desc", "X\n"), End())),
		no("L-then-pax-path", "libarchive: L name; Go: L name over pax", Cat(Ext('L', "././@LongLink", []byte("gnu/desc\x00")), Pax("path", "pax/desc"), File("hdr/desc", "X\n"), End())),
		no("pax-then-pax", "libarchive re-parses the inner body: WARN", Cat(Pax("path", "p1/desc"), Pax("path", "p2/desc"), File("hdr/desc", "X\n"), End())),
		no("L-then-L", "two GNU long names", Cat(Ext('L', "././@LongLink", []byte("l1/desc\x00")), Ext('L', "././@LongLink", []byte("l2/desc\x00")), File("hdr/desc", "X\n"), End())),
		no("L-only", "a GNU long name", Cat(Ext('L', "././@LongLink", []byte("gnu/desc\x00")), File("hdr/desc", "X\n"), End())),
		no("K-longlink", "a GNU long link name", Cat(Ext('K', "././@LongLink", []byte("target/x\x00")), FileH(Hdr{Name: "a/desc", Typeflag: '2', Linkname: "short"}, ""), End())),
		no("pax-path-differs", "a pax path other than the header name", Cat(Pax("path", "pax/desc"), File("hdr/desc", "X\n"), End())),
		no("pax-path-twice", "a record repeated", Cat(Pax("path", "a/desc", "path", "a/desc"), File("a/desc", "X\n"), End())),
		no("pax-path-empty", "libarchive ignores an empty path", Cat(Pax("path", ""), File("hdr/desc", "X\n"), End())),
		no("pax-path-nul", "libarchive cuts a pax value at NUL", Cat(Pax("path", "a/desc\x00evil"), File("a/desc", "X\n"), End())),
		no("pax-path-utf8", "libarchive converts a UTF-8 pax path to the locale", Cat(Pax("path", "a/\xc3\xa9"), File("a/\xc3\xa9", "X\n"), End())),
		no("pax-sparse-name", "GNU.sparse.name overrides path in libarchive", Cat(Pax("path", "p1/desc", "GNU.sparse.name", "sp/desc"), File("p1/desc", "X\n"), End())),
		no("pax-size", "a pax size overrides the header size (the rest is read as headers)", Cat(Pax("size", "2"), FileH(Hdr{Name: "a/desc"}, "AB"+strings.Repeat("Z", 598)), End())),
		no("pax-linkpath", "a pax linkpath", Cat(Pax("linkpath", "other"), File("a/desc", "A\n"), End())),
		no("pax-hdrcharset", "hdrcharset changes how libarchive converts names", Cat(Pax("hdrcharset", "BINARY", "path", "a/desc"), File("a/desc", "A\n"), End())),
		no("pax-malformed", "a malformed record: WARN", Cat(Ext('x', "PaxHeader/x", []byte("99 path=x\n")), File("hdr/desc", "X\n"), End())),
		no("pax-leading-zero-length", "a record length with a leading zero", Cat(Ext('x', "PaxHeader/x", []byte("015 path=a/desc\n")), File("a/desc", "X\n"), End())),
		no("pax-then-end", "a pax header followed by the end marker", Cat(File("a/desc", "A\n"), Pax("uid", "1"), End())),
		no("pax-empty", "an empty pax header", Cat(Ext('x', "PaxHeader/x", nil), File("a/desc", "A\n"), End())),
		no("pax-global", "a 'g' header: libarchive ignores its path, Go returns it as an entry", Cat(Ext('g', "pax_global_header", PaxBody("path", "glob/desc")), File("hdr/desc", "X\n"), End())),
		no("pax-global-then-x", "'g' then 'x'", Cat(Ext('g', "pax_global_header", PaxBody("comment", "x")), Pax("path", "a/desc"), File("a/desc", "X\n"), End())),
		no("x-then-g", "'x' then 'g'", Cat(Pax("path", "a/desc"), Ext('g', "pax_global_header", PaxBody("comment", "x")), File("a/desc", "X\n"), End())),
		no("sun-X", "Solaris 'X' is pax to libarchive, an entry to Go", Cat(Ext('X', "PaxHeader/x", PaxBody("path", "sun/desc")), File("hdr/desc", "X\n"), End())),
		no("volume-header", "a GNU volume header: skipped by libarchive, an entry to Go", Cat(Hdr{Name: "VOL", Typeflag: 'V'}.Block(), File("a/desc", "A\n"), End())),
		no("solaris-acl", "a Solaris ACL header", Cat(Ext('A', "acl", []byte("x")), File("a/desc", "A\n"), End())),

		// Refused: magic and version (bypass 1, second family).
		no("ustarX-prefix", "magic \"ustarX\": libarchive joins the prefix, Go reads V7", Cat(FileH(Hdr{Name: "desc", Prefix: "pre", Magic: "ustarX"}, "X\n"), End())),
		no("ustar-badversion-prefix", "version \"xx\": libarchive joins the prefix", Cat(FileH(Hdr{Name: "desc", Prefix: "pre", Version: "xx"}, "X\n"), End())),
		no("ustar-space-version", "version \" \\0\" with ustar\\0 magic", Cat(FileH(Hdr{Name: "a/desc", Version: " \x00"}, "X\n"), End())),
		no("gnu-magic-prefix", "GNU magic: libarchive ignores the prefix bytes, Go joins them", Cat(FileH(Hdr{Name: "desc", Prefix: "pre", Magic: "ustar ", Version: " \x00"}, "X\n"), End())),
		no("gnu-magic", "GNU tar format", Cat(FileH(Hdr{Name: "a/desc", Magic: "ustar ", Version: " \x00"}, "X\n"), End())),
		no("v7-prefix", "no magic: V7", Cat(FileH(Hdr{Name: "desc", Prefix: "pre", Magic: "\x00\x00\x00\x00\x00\x00", Version: "\x00\x00"}, "X\n"), End())),

		// Refused: checksums and numbers.
		no("signed-checksum", "a checksum only the signed sum matches", Cat(FileH(Hdr{Name: "a/\xe9desc", Checksum: "signed"}, "X\n"), End())),
		no("bad-checksum-2nd", "libalpm fails on RETRY; bsdtar -t skips the header and exits 0", Cat(File("a/desc", "A\n"), FileH(Hdr{Name: "b/desc", Checksum: "bad"}, "B\n"), File("c/desc", "C\n"), End())),
		no("checksum-leading-spaces", "a checksum field with leading spaces (accepted by libarchive, not canonical)", Cat(FileH(Hdr{Name: "a/desc", Checksum: "spaces"}, "A\n"), End())),
		no("base256-size", "a base-256 size", Cat(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[124:136], "\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02") }}.Block(), Pad([]byte("A\n")), End())),
		no("base256-uid", "a base-256 uid", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[108:116], "\x80\x00\x00\x00\x00\x00\x01\x00") }}, "A\n"), End())),
		no("octal-leading-spaces", "a size field with leading spaces", Cat(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[124:136], "   2        ") }}.Block(), Pad([]byte("A\n")), End())),
		no("octal-nonoctal", "a size field with a non-octal digit (libarchive does not bid)", Cat(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[124:136], "00000000002x") }}.Block(), Pad([]byte("A\n")), End())),
		no("octal-junk-after-space", "digits after the terminator (tar_atol stops at the space)", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[136:148], "00000000 777") }}, "A\n"), End())),
		no("devmajor-junk", "a devmajor field with garbage", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { copy(b[329:337], "zz") }}, "A\n"), End())),
		no("header-padding", "non-zero bytes in the header's last 12 bytes", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { b[505] = 'x' }}, "A\n"), End())),

		// Refused: types.
		no("hardlink", "a hard link", Cat(File("a/desc", "A\n"), FileH(Hdr{Name: "b/desc", Typeflag: '1', Linkname: "a/desc"}, ""), End())),
		no("hardlink-with-size", "a ustar hard link's body is read as headers", Cat(Hdr{Name: "h/desc", Typeflag: '1', Linkname: "a/desc", Size: int64(len(inner))}.Block(), inner, End())),
		no("symlink", "a symlink", Cat(FileH(Hdr{Name: "a/desc", Typeflag: '2', Linkname: "/etc/shadow"}, ""), End())),
		no("chardev", "a character device", Cat(FileH(Hdr{Name: "a/desc", Typeflag: '3'}, ""), End())),
		no("blockdev", "a block device", Cat(FileH(Hdr{Name: "a/desc", Typeflag: '4'}, ""), End())),
		no("fifo", "a fifo", Cat(FileH(Hdr{Name: "a/desc", Typeflag: '6'}, ""), End())),
		no("contiguous", "typeflag '7' (a regular file to libarchive)", Cat(FileH(Hdr{Name: "a/desc", Typeflag: '7'}, "A\n"), End())),
		no("unknown-Z", "an unknown typeflag (a regular file to libarchive)", Cat(FileH(Hdr{Name: "z/desc", Typeflag: 'Z'}, "Z\n"), End())),
		no("gnu-sparse-S", "a GNU sparse file", Cat(FileH(Hdr{Name: "a/desc", Typeflag: 'S'}, "A\n"), End())),
		no("gnu-dumpdir-D", "a GNU directory dump (a directory with a body)", Cat(FileH(Hdr{Name: "d/", Typeflag: 'D'}, "Ynothing\x00"), End())),
		no("typeflag-nul", "a pre-POSIX NUL typeflag", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { b[156] = 0 }}, "A\n"), End())),
		no("typeflag-nul-slash", "a NUL typeflag with a trailing slash: a directory", Cat(Hdr{Name: "dir/", Edit: func(b []byte) { b[156] = 0 }}.Block(), End())),

		// Refused: smuggling through bodies and the end marker.
		no("reg-slash-with-body", "a regular file named x/: libarchive reads its body as headers, Go skips it", Cat(Hdr{Name: "x/", Size: int64(len(inner))}.Block(), inner, File("after/desc", "Z\n"), End())),
		no("reg-slash-empty", "a regular file whose name ends in /", Cat(Hdr{Name: "x/"}.Block(), End())),
		no("dir-with-size", "a directory's body is read as headers by libarchive", Cat(Hdr{Name: "d/", Typeflag: '5', Size: int64(len(inner))}.Block(), inner, File("after/desc", "Z\n"), End())),
		no("dir-without-slash", "a directory whose name lacks the trailing slash", Cat(Hdr{Name: "d", Typeflag: '5'}.Block(), End())),
		no("one-zero-block-then-entry", "libarchive ends at the first zero block; the entry behind it is invisible to it", Cat(File("a/desc", "A\n"), make([]byte, 512), File("hidden/desc", "H\n"), End())),
		no("end-then-entry", "an entry after the end marker", Cat(File("a/desc", "A\n"), End(), File("hidden/desc", "H\n"), End())),
		no("trailing-garbage", "bytes after the end marker", Cat(File("a/desc", "A\n"), End(), []byte(strings.Repeat("garbage", 100)))),
		no("no-end-marker", "the archive ends at a block boundary without the marker", File("a/desc", "A\n")),
		no("truncated-header", "the stream ends inside a header", Cat(File("a/desc", "A\n"), File("b/desc", "B\n")[:300])),
		no("truncated-content", "the stream ends inside content", Cat(Hdr{Name: "a/desc", Size: 2000}.Block(), make([]byte, 700))),
		no("content-padding-junk", "non-zero padding after content", Cat(Hdr{Name: "a/desc", Size: 2}.Block(), append([]byte("A\nZ"), make([]byte, 509)...), End())),
		no("huge-size", "a header claiming 8 GiB", Cat(Hdr{Name: "a/desc", Size: 8<<30 - 512}.Block(), make([]byte, 1024))),

		// Refused: names.
		no("name-dotdot", "a .. component", Cat(File("../a/desc", "A\n"), End())),
		no("name-dotdot-inside", "a .. component inside", Cat(File("a/../../etc/desc", "A\n"), End())),
		no("name-absolute", "an absolute path", Cat(File("/a/desc", "A\n"), End())),
		no("name-dot", "a . component", Cat(File("./a/desc", "A\n"), End())),
		no("name-empty-component", "an empty component", Cat(File("a//desc", "A\n"), End())),
		no("name-nul-junk", "bytes after the NUL that ends the name", Cat(FileH(Hdr{Name: "a/desc\x00junk"}, "A\n"), End())),
		no("prefix-nul-junk", "bytes after the NUL that ends the prefix", Cat(FileH(Hdr{Name: "desc", Prefix: "a\x00junk"}, "A\n"), End())),
		no("prefix-trailing-slash", "a prefix ending in / (readers join differently)", Cat(FileH(Hdr{Name: "desc", Prefix: "a/"}, "A\n"), End())),
		no("name-control", "a newline in a name", Cat(File("a/de\nsc", "A\n"), End())),
		no("name-empty", "an empty name", Cat(FileH(Hdr{Name: ""}, "A\n"), End())),
		no("linkname-on-file", "a link name on a regular file", Cat(FileH(Hdr{Name: "a/desc", Linkname: "x"}, "A\n"), End())),
		no("uname-junk", "bytes after the NUL of uname", Cat(FileH(Hdr{Name: "a/desc", Edit: func(b []byte) { b[280] = 'x' }}, "A\n"), End())),
	}
}
