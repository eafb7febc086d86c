package repodb

import "strings"

// ParseFilename splits a package file name as makepkg writes it,
// <name>-<pkgver>-<pkgrel>-<arch>.pkg.tar[.<compression>], into the name,
// the version ([epoch:]pkgver-pkgrel) and the architecture. ok is false
// for anything else, in particular for what is not one plain file name
// (a '/' or a NUL) and for a suffix that is not a package's (".pkg.tar"
// followed by nothing or by one extension without '.' or '-': not
// ".pkg.tar.zst.sig", ".pkg.tar.", ".pkg.tarx"). It is a parse of the
// name only: callers use it to label a file, never to trust one.
func ParseFilename(filename string) (name, version, arch string, ok bool) {
	i := strings.LastIndex(filename, ".pkg.tar")
	if i <= 0 || strings.ContainsAny(filename, "/\x00") {
		return "", "", "", false
	}
	if ext := filename[i+len(".pkg.tar"):]; ext != "" && (ext[0] != '.' || len(ext) == 1 || strings.ContainsAny(ext[1:], ".-")) {
		return "", "", "", false
	}
	parts := strings.Split(filename[:i], "-")
	if len(parts) < 4 {
		return "", "", "", false
	}
	n := len(parts)
	name = strings.Join(parts[:n-3], "-")
	version = parts[n-3] + "-" + parts[n-2]
	arch = parts[n-1]
	if name == "" || parts[n-3] == "" || parts[n-2] == "" || arch == "" {
		return "", "", "", false
	}
	return name, version, arch, true
}
