package freshness

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestAnyArchitecture(t *testing.T) {
	s := stmt(1, dbA, t0)
	s.Architecture = AnyArchitecture
	if _, err := Check(s, "ab", held(dbA), nil, t0, Policy{MaxAge: DefaultMaxAge}); err != nil {
		t.Fatalf("a statement for 'any' refused: %v", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"required", "optional", "off"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Required", "on", "no"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
}

func TestAcceptedSet(t *testing.T) {
	s := NewAcceptedSet()
	a := &Accepted{Repository: "core", Architecture: "x86_64", Counter: 7, Issued: t0, DBSHA256: dbA.SHA256}
	b := &Accepted{Repository: "extra", Architecture: "x86_64", Counter: 3, Issued: t0, DBSHA256: dbB.SHA256}
	for _, r := range []*Accepted{b, a} {
		if ok, err := s.Put(r); !ok || err != nil {
			t.Fatalf("Put(%+v) = %v, %v", r, ok, err)
		}
	}
	older := *a
	older.Counter = 6
	if ok, _ := s.Put(&older); ok {
		t.Fatal("an older record replaced a newer one")
	}
	if got := s.Get("core", "x86_64"); got.Counter != 7 {
		t.Fatalf("Get = %+v", got)
	}
	if !s.Seen("core") || s.Seen("community") || s.Get("core", "aarch64") != nil {
		t.Fatal("Seen/Get wrong")
	}
	text, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), `{"schema_version":1,"repository":"core"`) || bytes.Count(text, []byte("\n")) != 2 {
		t.Fatalf("stored form:\n%s", text)
	}
	back, err := ParseAcceptedSet(text)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(again, text) {
		t.Fatalf("round trip differs:\n%s\n%s", text, again)
	}
	if e, err := ParseAcceptedSet(nil); err != nil || len(e.All()) != 0 {
		t.Fatalf("empty: %v %v", e, err)
	}
	line, _ := MarshalAccepted(a)
	for name, bad := range map[string]string{
		"torn":      strings.TrimSuffix(string(text), "\n"),
		"duplicate": string(line) + string(line),
		"blank":     "\n",
		"garbage":   string(line) + "hello\n",
		"too many":  strings.Repeat(string(line), MaxAcceptedRecords+1),
	} {
		if _, err := ParseAcceptedSet([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseAcceptedSet(f *testing.F) {
	s := NewAcceptedSet()
	s.Put(&Accepted{Repository: "core", Architecture: "x86_64", Counter: 7, Issued: t0, DBSHA256: dbA.SHA256, StatementSHA256: dbB.SHA256})
	s.Put(&Accepted{Repository: "extra", Architecture: "any", Counter: 1, Issued: t0.Add(time.Hour), DBSHA256: dbB.SHA256})
	b, _ := s.Marshal()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		s, err := ParseAcceptedSet(b)
		if err != nil {
			return
		}
		// What parses is kept as it was: the stored form round-trips.
		text, err := s.Marshal()
		if err != nil {
			t.Fatalf("a parsed set does not marshal: %v", err)
		}
		again, err := ParseAcceptedSet(text)
		if err != nil {
			t.Fatalf("the marshalled set does not parse: %v\n%s", err, text)
		}
		x, y := s.All(), again.All()
		if len(x) != len(y) {
			t.Fatalf("%d records, then %d", len(x), len(y))
		}
		for i := range x {
			if *x[i] != *y[i] {
				t.Fatalf("record %d changed: %+v != %+v", i, *x[i], *y[i])
			}
		}
	})
}
