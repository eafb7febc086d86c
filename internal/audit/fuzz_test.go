package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadAuditLog feeds arbitrary bytes to the chain reader: it must never
// panic, never deliver more records than lines, and must accept exactly
// what it re-reads identically (a log it accepts has a stable head).
func FuzzReadAuditLog(f *testing.F) {
	dir := f.TempDir()
	w, err := Open(filepath.Join(dir, "seed"))
	if err != nil {
		f.Fatal(err)
	}
	w.Now = fixedClock
	for i := range 3 {
		if _, err := w.Append(testRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := w.Append(statementRecord(f, 1, "db", stmtT0)); err != nil {
		f.Fatal(err)
	}
	w.Close()
	seed, err := os.ReadFile(filepath.Join(dir, "seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-5])
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"schema_version":1}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		head, err := Scan(bytes.NewReader(b), func(int, Record) error { n++; return nil })
		if n > bytes.Count(b, []byte("\n")) {
			t.Fatalf("%d records from %d lines", n, bytes.Count(b, []byte("\n")))
		}
		if head.Records != n {
			t.Fatalf("head says %d records, %d delivered", head.Records, n)
		}
		var ce *ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("non-chain error from a bytes.Reader: %v", err)
		}
		if err == nil {
			again, err2 := VerifyHead(bytes.NewReader(b), head)
			if err2 != nil || again != head {
				t.Fatalf("accepted log re-read differently: %v %+v %+v", err2, again, head)
			}
		}
	})
}
