package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/bintrans/bintrans/audit"
)

// The signer's part of the state dir: <state-dir>/sign/.
const (
	stateSubdir    = "sign"
	intentsSubdir  = "intents"
	lockName       = "lock"
	maxIntentSize  = 64 << 10
	maxIntentFiles = 1 << 20
	maxHeadSize    = 4 << 10
)

// ErrStateLocked is returned (wrapped) when another signer uses the state dir.
var ErrStateLocked = errors.New("the state dir is in use by another bintrans sign")

// intent is the journal record written, and fsync'ed, before a signature is
// uploaded: everything needed to finish the job after a crash without the
// repository database. Record carries the package fields of the audit record
// (the log fields are filled in when the entry is known).
type intent struct {
	SchemaVersion int          `json:"schema_version"`
	LeafHash      string       `json:"leaf_hash"`
	Signature     []byte       `json:"signature"` // the .t bytes
	Record        audit.Record `json:"record"`
}

var leafRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// stateDir is the signer's locked state directory.
type stateDir struct {
	dir  string // <state-dir>/sign
	lock *os.File
}

func openState(root string) (*stateDir, error) {
	dir := filepath.Join(root, stateSubdir)
	if err := os.MkdirAll(filepath.Join(dir, intentsSubdir), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrStateLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return &stateDir{dir: dir, lock: f}, nil
}

func (s *stateDir) close() error { return s.lock.Close() }

func (s *stateDir) intentPath(leaf string) string {
	return filepath.Join(s.dir, intentsSubdir, leaf+".json")
}

// writeIntent records in durably before the upload.
func (s *stateDir) writeIntent(in *intent) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, intentsSubdir), in.LeafHash+".json", b, 0o600, true)
}

// removeIntent forgets a finished intent. Not being durable is harmless:
// finishing an intent twice is idempotent.
func (s *stateDir) removeIntent(leaf string) error {
	err := os.Remove(s.intentPath(leaf))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// intents lists the unfinished intents, bounded. A malformed intent file is
// an error naming it (a human must look: it may be the only trace of a
// logged signature).
func (s *stateDir) intents() ([]*intent, error) {
	dir := filepath.Join(s.dir, intentsSubdir)
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(maxIntentFiles + 1)
	d.Close()
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(names) > maxIntentFiles {
		return nil, fmt.Errorf("%s: more than %d intent files", dir, maxIntentFiles)
	}
	var out []*intent
	for _, n := range names {
		if strings.HasPrefix(n, ".") { // temp file of a crashed writeIntent: never renamed, never uploaded
			os.Remove(filepath.Join(dir, n))
			continue
		}
		p := filepath.Join(dir, n)
		b, err := readFileLimit(p, maxIntentSize)
		if err != nil {
			return nil, err
		}
		var in intent
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("intent %s: %w", p, err)
		}
		if in.SchemaVersion != 1 || !leafRE.MatchString(in.LeafHash) || n != in.LeafHash+".json" || len(in.Signature) == 0 {
			return nil, fmt.Errorf("intent %s: malformed", p)
		}
		out = append(out, &in)
	}
	return out, nil
}

// savedHead is the audit log head this signer wrote last, kept in the state
// dir to detect records removed from (or rewritten at) the end of the audit
// log between runs.
type savedHead struct {
	AuditLog string `json:"audit_log"`
	audit.Head
}

func (s *stateDir) headPath() string { return filepath.Join(s.dir, "audit-head.json") }

func (s *stateDir) loadHead() (*savedHead, error) {
	b, err := readFileLimit(s.headPath(), maxHeadSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h savedHead
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", s.headPath(), err)
	}
	return &h, nil
}

func (s *stateDir) storeHead(h savedHead) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.dir, filepath.Base(s.headPath()), b, 0o600, true)
}

func readFileLimit(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// writeFileAtomic writes dir/name via a temp file in dir: write, fsync,
// rename; with syncDir, the directory is fsync'ed too so the rename is
// durable. Readers see the old file or the new one, never a mix.
func writeFileAtomic(dir, name string, data []byte, perm os.FileMode, syncDirAfter bool) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	if syncDirAfter {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
