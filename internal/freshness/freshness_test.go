package freshness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	dbA   = DigestOf([]byte("core.db, first version"))
	dbB   = DigestOf([]byte("core.db, second version"))
	files = DigestOf([]byte("core.files"))
	t0    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

func stmt(counter uint64, db Digest, issued time.Time) *Statement {
	return &Statement{Repository: "core", Architecture: "x86_64", DB: db, Files: files, Counter: counter, Issued: issued, Interval: DefaultInterval}
}

const golden = `bintrans-repository-statement v1
repository core
architecture x86_64
db sha256:3f0b9b0f4e1c7f0c2a35a3b5f1f0c6a2b4f5c8d9e0a1b2c3d4e5f60718293a4b size:1234
files -
counter 42
issued 2026-12-07T02:13:36Z
interval 86400
`

func TestParseGolden(t *testing.T) {
	s, err := Parse([]byte(golden))
	if err != nil {
		t.Fatal(err)
	}
	want := Statement{Repository: "core", Architecture: "x86_64",
		DB:      Digest{SHA256: "3f0b9b0f4e1c7f0c2a35a3b5f1f0c6a2b4f5c8d9e0a1b2c3d4e5f60718293a4b", Size: 1234},
		Counter: 42, Issued: time.Date(2026, 12, 7, 2, 13, 36, 0, time.UTC), Interval: 24 * time.Hour}
	if *s != want {
		t.Fatalf("parsed %+v\nwant   %+v", *s, want)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != golden {
		t.Fatalf("Marshal(Parse(golden)) differs:\n%s", b)
	}
}

func TestParseRefuses(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(golden, old) {
			t.Fatalf("golden has no %q", old)
		}
		return strings.Replace(golden, old, new, 1)
	}
	for _, c := range []struct{ name, text string }{
		{"empty", ""},
		{"no final newline", strings.TrimSuffix(golden, "\n")},
		{"CRLF", strings.ReplaceAll(golden, "\n", "\r\n")},
		{"other version", edit("v1", "v2")},
		{"extra line", golden + "note hello\n"},
		{"missing line", edit("files -\n", "")},
		{"lines swapped", edit("counter 42\nissued 2026-12-07T02:13:36Z", "issued 2026-12-07T02:13:36Z\ncounter 42")},
		{"double space", edit("repository core", "repository  core")},
		{"trailing space", edit("architecture x86_64", "architecture x86_64 ")},
		{"repository with slash", edit("repository core", "repository co/re")},
		{"repository starting with dash", edit("repository core", "repository -core")},
		{"uppercase hex", edit("3f0b9b0f", "3F0B9B0F")},
		{"short hash", edit("3f0b9b0f", "3f0b9b0")},
		{"no size", edit(" size:1234", "")},
		{"size with plus", edit("size:1234", "size:+1234")},
		{"leading zero counter", edit("counter 42", "counter 042")},
		{"counter zero", edit("counter 42", "counter 0")},
		{"negative counter", edit("counter 42", "counter -1")},
		{"counter overflow", edit("counter 42", "counter 18446744073709551616")},
		{"local time", edit("2026-12-07T02:13:36Z", "2026-12-07T03:13:36+01:00")},
		{"fractional second", edit("2026-12-07T02:13:36Z", "2026-12-07T02:13:36.5Z")},
		{"interval zero", edit("interval 86400", "interval 0")},
		{"interval unit", edit("interval 86400", "interval 24h")},
		{"NUL", edit("core", "co\x00re")},
		{"non-ASCII", edit("core", "cöre")},
		{"too large", golden + strings.Repeat("x", MaxSize)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.text))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse accepted it (%+v) or failed otherwise: %v", s, err)
			}
		})
	}
}

func TestPath(t *testing.T) {
	p := Path(dbA.SHA256)
	if p != "statements/"+dbA.SHA256+".stmt" {
		t.Fatal(p)
	}
	if h, ok := IsPath(p); !ok || h != dbA.SHA256 {
		t.Fatalf("IsPath(%q) = %q, %v", p, h, ok)
	}
	for _, bad := range []string{"statements/x.stmt", "statements/" + dbA.SHA256, "other/" + dbA.SHA256 + ".stmt",
		"statements/" + strings.ToUpper(dbA.SHA256) + ".stmt", "statements/../" + dbA.SHA256 + ".stmt", dbA.SHA256 + ".stmt"} {
		if _, ok := IsPath(bad); ok {
			t.Errorf("IsPath(%q) = true", bad)
		}
	}
	// A statement's trusted comment can never be a package file name.
	if !strings.Contains(p, "/") {
		t.Fatal("statement path has no '/'")
	}
}

func held(db Digest) Held {
	return Held{Repository: "core", Architectures: []string{"x86_64"}, File: db}
}

func TestCheck(t *testing.T) {
	now := t0.Add(time.Hour)
	pol := Policy{MaxAge: DefaultMaxAge}
	prev := &Accepted{Repository: "core", Architecture: "x86_64", Counter: 5, Issued: t0.Add(-time.Hour), DBSHA256: dbA.SHA256}

	type want struct {
		err    any // pointer to the error type expected, nil for success
		substr string
	}
	for _, c := range []struct {
		name string
		s    *Statement
		held Held
		prev *Accepted
		now  time.Time
		want want
	}{
		{"fresh, no state", stmt(1, dbA, t0), held(dbA), nil, now, want{}},
		{"newer than stored", stmt(6, dbB, t0), held(dbB), prev, now, want{}},
		{"same statement again", stmt(5, dbA, t0.Add(-time.Hour)), held(dbA), prev, now, want{}},
		{"files database", stmt(1, dbA, t0), Held{Repository: "core", Architectures: []string{"x86_64"}, File: files, Files: true}, nil, now, want{}},
		{"other repository", stmt(1, dbA, t0), Held{Repository: "extra", Architectures: []string{"x86_64"}, File: dbA}, nil, now, want{new(*MismatchError), "another repository"}},
		{"other architecture", stmt(1, dbA, t0), Held{Repository: "core", Architectures: []string{"aarch64"}, File: dbA}, nil, now, want{new(*MismatchError), "another architecture"}},
		{"other db", stmt(1, dbA, t0), held(dbB), nil, now, want{new(*MismatchError), "another db"}},
		{"other size", stmt(1, dbA, t0), held(Digest{SHA256: dbA.SHA256, Size: dbA.Size + 1}), nil, now, want{new(*MismatchError), "another db"}},
		{"stale", stmt(9, dbB, t0.Add(-8*24*time.Hour)), held(dbB), nil, now, want{new(*StaleError), "8d 1h ago"}},
		{"future", stmt(9, dbB, now.Add(time.Hour)), held(dbB), nil, now, want{new(*FutureError), "in the future"}},
		{"within skew", stmt(9, dbB, now.Add(4*time.Minute)), held(dbB), nil, now, want{}},
		{"rollback", stmt(4, dbB, t0.Add(-2*time.Hour)), held(dbB), prev, now, want{new(*RollbackError), "ROLLBACK"}},
		{"same counter, other db", stmt(5, dbB, t0.Add(-time.Hour)), held(dbB), prev, now, want{new(*ConflictError), "two histories"}},
		{"same counter, other time", stmt(5, dbA, t0), held(dbA), prev, now, want{new(*ConflictError), "SECURITY ERROR"}},
		{"later counter, earlier date", stmt(6, dbB, t0.Add(-2*time.Hour)), held(dbB), prev, now, want{new(*RollbackError), "dated before"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			acc, err := Check(c.s, "ab", c.held, c.prev, c.now, pol)
			if c.want.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if acc.Counter != c.s.Counter || acc.DBSHA256 != c.s.DB.SHA256 || !acc.Issued.Equal(c.s.Issued) {
					t.Fatalf("accepted %+v for %+v", acc, c.s)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", acc)
			}
			if !errors.As(err, c.want.err) {
				t.Fatalf("error %T (%v), want %T", err, err, c.want.err)
			}
			if !strings.Contains(err.Error(), c.want.substr) {
				t.Fatalf("error %q does not say %q", err, c.want.substr)
			}
		})
	}
	// MaxAge 0 disables the age check.
	if _, err := Check(stmt(9, dbB, t0.Add(-800*24*time.Hour)), "ab", held(dbB), nil, now, Policy{}); err != nil {
		t.Fatalf("MaxAge 0: %v", err)
	}
}

func TestAcceptedRoundTrip(t *testing.T) {
	a := &Accepted{Repository: "core", Architecture: "x86_64", Counter: 7, Issued: t0, DBSHA256: dbA.SHA256, StatementSHA256: dbB.SHA256}
	b, err := MarshalAccepted(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAccepted(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *a {
		t.Fatalf("round trip: %+v != %+v", got, a)
	}
	for _, bad := range []string{
		``, `{}`, `{"schema_version":2,"repository":"core","architecture":"x86_64","counter":7,"issued":"2026-12-01T10:00:00Z","db_sha256":"` + dbA.SHA256 + `"}`,
		`{"schema_version":1,"repository":"core","architecture":"x86_64","counter":0,"issued":"2026-12-01T10:00:00Z","db_sha256":"` + dbA.SHA256 + `"}`,
		`{"schema_version":1,"repository":"co/re","architecture":"x86_64","counter":7,"issued":"2026-12-01T10:00:00Z","db_sha256":"` + dbA.SHA256 + `"}`,
		`{"schema_version":1,"repository":"core","architecture":"x86_64","counter":7,"issued":"2026-12-01T10:00:00Z","db_sha256":"` + dbA.SHA256 + `","extra":1}`,
		string(b) + string(b),
	} {
		if _, err := ParseAccepted([]byte(bad)); err == nil {
			t.Errorf("ParseAccepted(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(golden))
	b, _ := stmt(3, dbA, t0).Marshal()
	f.Add(b)
	f.Add([]byte(strings.Replace(golden, "files -", "files sha256:"+files.SHA256+" size:12", 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		// One way to write every statement: what parses writes back byte
		// for byte, so two readers cannot disagree about a statement.
		again, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed statement does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Parse(b)) != b:\n%q\n%q", b, again)
		}
	})
}
