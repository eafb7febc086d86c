package signer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/bintrans/bintrans/verify"
)

// tempRE matches the names writeFileAtomic gives its temp files:
// os.CreateTemp(dir, "."+name+".tmp-*") puts a decimal uint32 at the "*".
var tempRE = regexp.MustCompile(`^\.(.+)\.tmp-[0-9]{1,10}$`)

// staleTemp reports whether name is a temp file writeFileAtomic creates
// in dir for a file for which keep(target name) is true.
func staleTemp(name string, keep func(string) bool) bool {
	m := tempRE.FindStringSubmatch(name)
	return m != nil && !strings.Contains(m[1], "/") && keep(m[1])
}

// sigDirTarget: the signature dir receives only <filename>.t and
// <filename>.t.bundle.
func sigDirTarget(name string) bool {
	return strings.HasSuffix(name, verify.SignatureSuffix) || strings.HasSuffix(name, verify.BundleSuffix)
}

// stateDirTarget: the files writeFileAtomic writes in <state-dir>/sign/.
func stateDirTarget(name string) bool {
	switch name {
	case journalName, "audit-head.json", checkpointName:
		return true
	}
	return false
}

// removeStaleTemps removes, from dir, the regular files that are temp files
// of writeFileAtomic for targets keep accepts: what a killed signer left
// behind. It must only run while the state lock is held (no other signer
// is writing). Nothing else is touched: not other dot files, not
// directories or symlinks of that name. It returns how many it removed.
func removeStaleTemps(dir string, keep func(string) bool) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	var errs []error
	for {
		ents, err := d.ReadDir(1024)
		for _, e := range ents {
			if !e.Type().IsRegular() || !staleTemp(e.Name(), keep) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, errors.Join(errs...)
}
