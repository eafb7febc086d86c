package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testRecord(i int) Record {
	return Record{
		Repo: "core", Arch: "x86_64",
		Filename:        fmt.Sprintf("pkg%03d-1.0-1-x86_64.pkg.tar.zst", i),
		Name:            fmt.Sprintf("pkg%03d", i),
		Version:         "1:1.0-1",
		Packager:        "Test Packager <t@example.org>",
		BuildDate:       1700000000 + int64(i),
		SHA256:          strings.Repeat(fmt.Sprintf("%x", i%16), 64),
		DBURL:           "file:///srv/repo/core/os/x86_64/core.db",
		DBSHA256:        strings.Repeat("ab", 32),
		LogURL:          "http://127.0.0.1:3000",
		LogIndex:        int64(i),
		UUID:            strings.Repeat("cd", 40),
		IntegratedTime:  1700000100 + int64(i),
		KeyID:           "471BB1BAE3F81BCC",
		BintransVersion: "test",
	}
}

func fixedClock() time.Time { return time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC) }

// writeLog writes n records through a real Writer and returns the file bytes.
func writeLog(t *testing.T, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Now = fixedClock
	for i := range n {
		if _, err := w.Append(testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func lines(b []byte) [][]byte {
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func TestRoundTrip(t *testing.T) {
	_, b := writeLog(t, 5)
	var got []Record
	head, err := Scan(bytes.NewReader(b), func(n int, r Record) error {
		if n != len(got)+1 {
			t.Errorf("line %d delivered as record %d", n, len(got)+1)
		}
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if head.Records != 5 || len(got) != 5 {
		t.Fatalf("head %+v, %d records", head, len(got))
	}
	if got[0].Prev != GenesisPrev {
		t.Errorf("first prev %s", got[0].Prev)
	}
	ls := lines(b)
	for i := 1; i < 5; i++ {
		if got[i].Prev != LineHash(bytes.TrimSuffix(ls[i-1], []byte("\n"))) {
			t.Errorf("record %d prev is not the hash of line %d", i+1, i)
		}
	}
	want := testRecord(3)
	want.SchemaVersion, want.Prev, want.Time = PackageSchemaVersion, got[3].Prev, "2026-11-26T07:00:00Z"
	if got[3] != want {
		t.Errorf("record 4 =\n%+v\nwant\n%+v", got[3], want)
	}
	if head.Hash != LineHash(bytes.TrimSuffix(ls[4], []byte("\n"))) {
		t.Errorf("head hash is not the hash of the last line")
	}
	if err := VerifyChain(bytes.NewReader(nil)); err != nil {
		t.Errorf("empty log: %v", err)
	}
}

func TestVerifyChainDetects(t *testing.T) {
	_, b := writeLog(t, 6)
	ls := lines(b)
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	edited := bytes.Replace(ls[2], []byte(`"log_index":2`), []byte(`"log_index":9`), 1)
	if bytes.Equal(edited, ls[2]) {
		t.Fatal("edit did not apply")
	}
	long := append(bytes.Repeat([]byte("x"), MaxLineSize+1), '\n')
	cases := []struct {
		name string
		log  []byte
		line int
		kind ChainErrorKind
	}{
		{"edited record", join(ls[0], ls[1], edited, ls[3], ls[4], ls[5]), 4, KindPrevMismatch},
		{"deleted record", join(ls[0], ls[1], ls[3], ls[4], ls[5]), 3, KindPrevMismatch},
		{"deleted first record", join(ls[1], ls[2], ls[3], ls[4], ls[5]), 1, KindPrevMismatch},
		{"reordered", join(ls[0], ls[2], ls[1], ls[3], ls[4], ls[5]), 2, KindPrevMismatch},
		{"inserted duplicate", join(ls[0], ls[1], ls[1], ls[2], ls[3], ls[4], ls[5]), 3, KindPrevMismatch},
		{"truncated last line", b[:len(b)-10], 6, KindTruncated},
		{"missing final newline", b[:len(b)-1], 6, KindTruncated},
		{"too long line", join(ls[0], long), 2, KindTooLong},
		{"too long unterminated", join(ls[0], long[:len(long)-1]), 2, KindTooLong},
		{"blank line", join(ls[0], []byte("\n"), ls[1]), 2, KindMalformed},
		{"garbage", join(ls[0], []byte("{not json\n")), 2, KindMalformed},
		{"crlf", join(ls[0], bytes.Replace(ls[1], []byte("\n"), []byte("\r\n"), 1)), 2, KindMalformed},
		{"unknown field", join(ls[0], bytes.Replace(ls[1], []byte(`{"schema_version"`), []byte(`{"x":1,"schema_version"`), 1)), 2, KindMalformed},
		{"key in other case", join(ls[0], bytes.Replace(ls[1], []byte(`"filename"`), []byte(`"FILENAME"`), 1)), 2, KindMalformed},
		{"extra space", join(ls[0], bytes.Replace(ls[1], []byte(`,"name"`), []byte(`, "name"`), 1)), 2, KindMalformed},
		{"trailing data", join(ls[0], bytes.Replace(ls[1], []byte("}\n"), []byte("}{}\n"), 1)), 2, KindMalformed},
		{"bad sha256", join(ls[0], bytes.Replace(ls[1], []byte(`"sha256":"1`), []byte(`"sha256":"X`), 1)), 2, KindMalformed},
		{"other schema", join(bytes.Replace(ls[0], []byte(`"schema_version":2`), []byte(`"schema_version":4`), 1)), 1, KindMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyChain(bytes.NewReader(c.log))
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyChain = %v, want *ChainError", err)
			}
			if ce.Line != c.line || ce.Kind != c.kind {
				t.Errorf("got line %d %s (%v), want line %d %s", ce.Line, ce.Kind, err, c.line, c.kind)
			}
			if ce.Kind == KindPrevMismatch && (ce.Expected == "" || ce.Got == "" || ce.Expected == ce.Got) {
				t.Errorf("prev mismatch without evidence: %+v", ce)
			}
		})
	}
}

// The chain alone cannot see records removed from the end; a head kept
// elsewhere can.
func TestVerifyHead(t *testing.T) {
	_, b := writeLog(t, 4)
	head, err := Scan(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyHead(bytes.NewReader(b), head); err != nil {
		t.Fatalf("intact log: %v", err)
	}
	ls := lines(b)
	shorter := bytes.Join(ls[:3], nil)
	if err := VerifyChain(bytes.NewReader(shorter)); err != nil {
		t.Fatalf("a shorter chain is still a chain: %v", err)
	}
	_, err = VerifyHead(bytes.NewReader(shorter), head)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Kind != KindHeadMismatch || ce.Line != 3 {
		t.Fatalf("VerifyHead(shorter) = %v, want head mismatch at line 3", err)
	}
	lastEdited := append(bytes.Join(ls[:3], nil), bytes.Replace(ls[3], []byte(`"arch":"x86_64"`), []byte(`"arch":"aarch64"`), 1)...)
	if _, err := VerifyHead(bytes.NewReader(lastEdited), head); !errors.As(err, &ce) || ce.Kind != KindHeadMismatch {
		t.Fatalf("VerifyHead(last edited) = %v, want head mismatch", err)
	}
}

func TestWriterReopenContinuesChain(t *testing.T) {
	path, _ := writeLog(t, 3)
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := w.Head(); h.Records != 3 {
		t.Fatalf("reopened head %+v", h)
	}
	if _, err := w.Append(testRecord(3)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f, _ := os.Open(path)
	defer f.Close()
	head, err := Scan(f, nil)
	if err != nil || head.Records != 4 {
		t.Fatalf("after reopen: %+v %v", head, err)
	}
}

func TestWriterLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	w.Close()
	w2, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	w2.Close()
}

func TestWriterRefusesBrokenChain(t *testing.T) {
	path, b := writeLog(t, 3)
	ls := lines(b)
	broken := bytes.Join([][]byte{ls[0], ls[2]}, nil)
	if err := os.WriteFile(path, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Fatalf("Open(broken) = %v, want chain error at line 2", err)
	}
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.As(err, &ce) || ce.Kind != KindTruncated {
		t.Fatalf("Open(torn) = %v, want truncated", err)
	}
}

func TestWriterRejectsInvalidRecord(t *testing.T) {
	w, err := Open(filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := testRecord(0)
	r.Filename = "../etc/passwd"
	if _, err := w.Append(r); err == nil {
		t.Fatal("Append accepted a path as filename")
	}
	r = testRecord(0)
	r.Packager = "evil\nline"
	if _, err := w.Append(r); err == nil {
		t.Fatal("Append accepted a newline in a field")
	}
	if h := w.Head(); h.Records != 0 {
		t.Fatalf("rejected records counted: %+v", h)
	}
}

func TestWriterConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if _, err := w.Append(testRecord(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	w.Close()
	f, _ := os.Open(path)
	defer f.Close()
	head, err := Scan(f, nil)
	if err != nil || head.Records != 64 {
		t.Fatalf("%+v %v", head, err)
	}
}
