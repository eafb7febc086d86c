package signer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/audit"
)

func testIntent(i int) *intent {
	leaf := strings.Repeat(string("0123456789abcdef"[i%16]), 64)
	return &intent{SchemaVersion: 1, LeafHash: leaf, Signature: []byte("untrusted comment: x\n"),
		Record: audit.Record{Filename: "p.pkg.tar.zst", SHA256: strings.Repeat("a", 64)}}
}

func TestJournalReplayAndCompaction(t *testing.T) {
	root := t.TempDir()
	s, err := openState(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := s.writeIntent(testIntent(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.removeIntent(testIntent(1).LeafHash)
	s.removeIntent(testIntent(3).LeafHash)
	s.writeIntent(testIntent(1)) // signed again later in the same run
	// A crash mid-append: a torn last line. Its fsync never returned, so its
	// upload never started: the replay ignores it.
	s.journal.Write([]byte(`{"op":"intent","leaf":"eeee`))
	s.close()

	s, err = openState(root)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.intents()
	var leaves []string
	for _, in := range got {
		leaves = append(leaves, in.LeafHash[:1])
	}
	if strings.Join(leaves, "") != "012" {
		t.Fatalf("pending after replay = %v, want intents 0, 1, 2 in order", leaves)
	}
	s.close()
	// Compacted: only the three pending intents, whole lines.
	b, _ := os.ReadFile(filepath.Join(root, stateSubdir, journalName))
	if bytes.Count(b, []byte("\n")) != 3 || !bytes.HasSuffix(b, []byte("\n")) || bytes.Contains(b, []byte(`"done"`)) {
		t.Fatalf("journal not compacted:\n%s", b)
	}
}

func TestJournalRejectsDamage(t *testing.T) {
	good, _ := json.Marshal(journalLine{Op: "intent", Leaf: testIntent(0).LeafHash, Intent: testIntent(0)})
	for name, content := range map[string]string{
		"garbage line":   string(good) + "\nnot json\n",
		"unknown op":     `{"op":"frob","leaf":"` + strings.Repeat("a", 64) + `"}` + "\n",
		"bad leaf":       `{"op":"done","leaf":"xyz"}` + "\n",
		"leaf mismatch":  strings.Replace(string(good), `"leaf":"000`, `"leaf":"111`, 1) + "\n",
		"intent missing": `{"op":"intent","leaf":"` + strings.Repeat("a", 64) + `"}` + "\n",
		"line too long":  strings.Repeat("x", maxJournalLine+10) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, stateSubdir), 0o700)
			os.WriteFile(filepath.Join(root, stateSubdir, journalName), []byte(content), 0o600)
			if s, err := openState(root); err == nil {
				s.close()
				t.Fatal("damaged journal accepted")
			} else if !strings.Contains(err.Error(), journalName) {
				t.Errorf("error does not name the journal: %v", err)
			}
		})
	}
}

// FuzzReadJournal: the intent journal reader never panics, and what it
// returns is well-formed and survives compaction unchanged.
func FuzzReadJournal(f *testing.F) {
	good, _ := json.Marshal(journalLine{Op: "intent", Leaf: testIntent(0).LeafHash, Intent: testIntent(0)})
	done, _ := json.Marshal(journalLine{Op: "done", Leaf: testIntent(0).LeafHash})
	f.Add(append(good, '\n'))
	f.Add(append(append(append(good, '\n'), done...), '\n'))
	f.Add(good[:20])
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "j")
		os.WriteFile(p, b, 0o600)
		got, err := readJournal(p)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, in := range got {
			if !leafRE.MatchString(in.LeafHash) || in.SchemaVersion != 1 || len(in.Signature) == 0 || seen[in.LeafHash] {
				t.Fatalf("bad pending intent %+v", in)
			}
			seen[in.LeafHash] = true
		}
		var buf bytes.Buffer
		for _, in := range got {
			l, _ := json.Marshal(journalLine{Op: "intent", Leaf: in.LeafHash, Intent: in})
			buf.Write(append(l, '\n'))
		}
		os.WriteFile(p, buf.Bytes(), 0o600)
		again, err := readJournal(p)
		if err != nil || len(again) != len(got) {
			t.Fatalf("compacted journal reads back differently: %v, %d vs %d", err, len(again), len(got))
		}
	})
}
