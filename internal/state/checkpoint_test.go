package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hook's checkpoint file as the previous bintrans wrote it
// (testdata/checkpoint-0123abcd.json) is read as is, and is still the
// format written.
func TestGoldenHookCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	old := golden(t, "checkpoint-0123abcd.json")
	os.WriteFile(filepath.Join(dir, "checkpoint-0123abcd.json"), old, 0o600)
	s := open(t, dir).CheckpointsFor("0123abcd")
	cp, err := s.Load(ctx(t))
	if err != nil || string(cp) != string(golden(t, "sign-checkpoint")) {
		t.Fatalf("Load = %q, %v", cp, err)
	}
	if b, _ := os.ReadFile(s.Path()); !bytes.Equal(b, old) {
		t.Error("Load rewrote a file in the current format")
	}
	// Storing the same checkpoint again writes the same bytes but the time.
	if err := s.Store(ctx(t), cp); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.Path())
	stamp := func(b []byte) []byte {
		var m map[string]any
		json.Unmarshal(b, &m)
		m["stored_at"] = "T"
		out, _ := json.MarshalIndent(m, "", "  ")
		return out
	}
	if !bytes.Equal(stamp(b), stamp(old)) || !bytes.HasSuffix(b, []byte("}\n")) || !bytes.HasPrefix(b, []byte("{\n  \"schema_version\": 1,\n  \"checkpoint\":")) {
		t.Errorf("written format changed:\n%s\nwas:\n%s", b, old)
	}
}

func signStore(dir string, readOnly bool) *CheckpointStore {
	s := NewCheckpointStore(filepath.Join(dir, "checkpoint.json"), StoreOptions{
		Legacy: []Legacy{{File: filepath.Join(dir, "checkpoint"), Decode: RawNote}},
	})
	s.readOnly = readOnly
	return s
}

// sign's raw note (testdata/sign-checkpoint, as the previous bintrans sign
// wrote <state-dir>/sign/checkpoint) is read and migrated by the first
// Load that may write: the same checkpoint in the current format, the old
// file gone. A read-only store reads it without migrating.
func TestGoldenSignCheckpointMigrates(t *testing.T) {
	dir := t.TempDir()
	old := golden(t, "sign-checkpoint")
	legacy := filepath.Join(dir, "checkpoint")
	os.WriteFile(legacy, old, 0o600)

	cp, err := signStore(dir, true).Load(ctx(t))
	if err != nil || !bytes.Equal(cp, old) {
		t.Fatalf("read-only Load = %q, %v", cp, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only Load migrated: %v", err)
	}

	s := signStore(dir, false)
	cp, err = s.Load(ctx(t))
	if err != nil || !bytes.Equal(cp, old) {
		t.Fatalf("Load = %q, %v", cp, err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the migrated file is still there: %v", err)
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got, _, reason := decode(b); reason != "" || !bytes.Equal(got, old) {
		t.Fatalf("migrated file: %q %q", got, reason)
	}
	// Loaded again: the same, from the new file.
	if cp, err := s.Load(ctx(t)); err != nil || !bytes.Equal(cp, old) {
		t.Fatalf("after migration: %q, %v", cp, err)
	}
	// The next Store moves on from it, and never backwards.
	if err := s.Store(ctx(t), note(2, 0)); err != nil {
		t.Fatal(err)
	}
	if cp, _ := s.Load(ctx(t)); !bytes.Equal(cp, old) {
		t.Errorf("a smaller tree replaced the migrated one: %q", cp)
	}
}

// Both files (a crash between the write and the removal): the new one
// counts, and the next write removes the old one.
func TestLegacyFileAfterNewFile(t *testing.T) {
	dir := t.TempDir()
	s := signStore(dir, false)
	if err := s.Store(ctx(t), note(10, 0)); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, "checkpoint")
	os.WriteFile(legacy, note(5, 1), 0o600)
	if cp, err := s.Load(ctx(t)); err != nil || !strings.Contains(string(cp), "\n10\n") {
		t.Fatalf("Load = %q, %v", cp, err)
	}
	if err := s.Store(ctx(t), note(11, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old file left: %v", err)
	}
}

// A legacy file that is not a checkpoint is a *CorruptError naming it,
// and is neither migrated nor removed.
func TestCorruptLegacyFileKept(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "checkpoint")
	for name, b := range map[string][]byte{
		"garbage":   []byte("not a note\n"),
		"too large": bytes.Repeat([]byte("x"), 70<<10),
		"empty":     nil,
	} {
		os.WriteFile(legacy, b, 0o600)
		s := signStore(dir, false)
		_, err := s.Load(ctx(t))
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != legacy {
			t.Errorf("%s: %v, want a *CorruptError for %s", name, err, legacy)
		}
		if err := s.Store(ctx(t), note(3, 0)); !errors.As(err, &ce) {
			t.Errorf("%s: Store over it: %v", name, err)
		}
		if got, _ := os.ReadFile(legacy); !bytes.Equal(got, b) {
			t.Errorf("%s: changed", name)
		}
		if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: migrated: %v", name, err)
		}
	}
}

// legacyJSON is a made-up older format of the store's own file:
// {"note": ..., "items": [...]}; its data is converted to the current
// {"items": [...]}.
func legacyJSON(b []byte) ([]byte, []byte, error) {
	var v struct {
		Note  string   `json:"note"`
		Items []string `json:"items"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Note == "" {
		return nil, nil, errors.New("not the legacy format")
	}
	data, _ := json.Marshal(map[string]any{"items": v.Items})
	return []byte(v.Note), data, nil
}

// Data stored with the checkpoint comes back with it; an older format of
// the same file migrates, data included; Store keeps the data; StoreData
// refuses to replace a larger tree (it would drop its data).
func TestCheckpointData(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	opts := StoreOptions{MaxData: 1 << 20, Legacy: []Legacy{{Decode: legacyJSON}}}
	s := d.CheckpointFile("monitor-x.json", opts)
	old, _ := json.Marshal(map[string]any{"note": string(note(7, 0)), "items": []string{"a", "b"}})
	os.WriteFile(s.Path(), old, 0o600)
	cp, data, err := s.LoadData(ctx(t))
	if err != nil || !strings.Contains(string(cp), "\n7\n") || string(data) != `{"items":["a","b"]}` {
		t.Fatalf("legacy LoadData = %q %s %v", cp, data, err)
	}
	b, _ := os.ReadFile(s.Path())
	if _, got, reason := decode(b); reason != "" || string(got) != `{"items":["a","b"]}` {
		t.Fatalf("migrated: %s %q", b, reason)
	}
	if err := s.StoreData(ctx(t), note(8, 0), []byte(`{"items":["c"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx(t), note(9, 0)); err != nil {
		t.Fatal(err)
	}
	if cp, data, err := s.LoadData(ctx(t)); err != nil || !strings.Contains(string(cp), "\n9\n") || string(data) != `{"items":["c"]}` {
		t.Fatalf("after Store: %q %s %v", cp, data, err)
	}
	if err := s.StoreData(ctx(t), note(8, 0), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "larger tree") {
		t.Errorf("StoreData of a smaller tree: %v", err)
	}
	var fe *ForkError
	if err := s.StoreData(ctx(t), note(9, 1), []byte(`{}`)); !errors.As(err, &fe) {
		t.Errorf("StoreData of a fork: %v", err)
	}
	if err := s.StoreData(ctx(t), note(10, 0), []byte(`{not json`)); err == nil {
		t.Error("StoreData stored data that is not JSON")
	}
	if err := s.StoreData(ctx(t), note(10, 0), bytes.Repeat([]byte(" "), 1<<20+1)); err == nil {
		t.Error("StoreData stored more than MaxData")
	}
	// A checkpoint-only store refuses a file with data.
	os.WriteFile(filepath.Join(dir, "checkpoint.json"), b, 0o600)
	var ce *CorruptError
	if _, err := d.Checkpoints().Load(ctx(t)); !errors.As(err, &ce) {
		t.Errorf("data in a checkpoint-only file: %v", err)
	}
	// Neither format: corrupt, with the current format's reason.
	os.WriteFile(s.Path(), []byte(`{"nope":1}`), 0o600)
	if _, _, err := s.LoadData(ctx(t)); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "not a checkpoint file") {
		t.Errorf("unknown format: %v", err)
	}
}
