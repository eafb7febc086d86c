package ci

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>.golden (or rewrites it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./ci -update' to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run 'go test ./ci -update' after checking the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func sha(c byte) string { return strings.Repeat(string(c), 64) }

const (
	policyKey = "E6A93C80B7A9E2C4"
	otherKey  = "0123456789ABCDEF"
)

// evilName is a file name a hostile repository database could carry: a
// workflow command, Markdown/HTML, a percent escape and a terminal escape.
const evilName = "evil|<b>x</b>%0A::set-output name=x::1,\x1b[2J\r\n::error::pwned ##[add-mask]hidden \u202e\u009b.pkg.tar.zst"

func entry(index int64) *verify.EntryID {
	return &verify.EntryID{
		UUID:           fmt.Sprintf("%016x%064x", 0x2f8a1c3b4d5e6f70, index+1),
		LogIndex:       index,
		IntegratedTime: 1764000000 + index,
	}
}

// fixtureReport has one package in every status, in no particular order,
// with the engine's typed errors.
func fixtureReport() Report {
	res := []verify.Result{
		{
			Artifact: verify.Artifact{Repo: "extra", Arch: "x86_64", Filename: "zlib-1:1.3.1-2-x86_64.pkg.tar.zst", Name: "zlib", Version: "1:1.3.1-2"},
			Status:   verify.StatusOK, SHA256: sha('a'), KeyID: policyKey, Entry: entry(7),
			Rebuild: &verify.RebuildVerdict{
				Confirmed: []string{"https://rebuilder.b.example", "https://rebuilder.a.example"},
				Unknown:   []string{"https://rebuilder.c.example"},
				Reasons:   map[string]string{"https://rebuilder.c.example": "no verdict for zlib 1:1.3.1-2\n(queued)"},
			},
			Duration: 12 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "bash-5.2.037-1-x86_64.pkg.tar.zst", Name: "bash", Version: "5.2.037-1", SHA256: sha('b')},
			Status:   verify.StatusOK, KeyID: policyKey, Entry: entry(0), Duration: 3 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "acl-2.3.2-1-x86_64.pkg.tar.zst", Name: "acl", Version: "2.3.2-1", SHA256: sha('c')},
			Err: &verify.MissingError{What: "signature", Filename: "acl-2.3.2-1-x86_64.pkg.tar.zst",
				Err: fmt.Errorf("file:///srv/sigs/acl-2.3.2-1-x86_64.pkg.tar.zst.t: %w", verify.ErrNotFound)},
			Duration: time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "glibc-2.41+r9-1-x86_64.pkg.tar.zst", Name: "glibc", Version: "2.41+r9-1"},
			SHA256:   sha('d'), KeyID: policyKey,
			Err:      &verify.SignatureError{Kind: verify.SigBadSignature, KeyID: policyKey, Got: sha('d')},
			Duration: 2 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "aarch64", Filename: "linux-6.12.1-1-aarch64.pkg.tar.zst", Name: "linux", Version: "6.12.1-1"},
			SHA256:   sha('e'), KeyID: otherKey,
			Err:      &verify.SignatureError{Kind: verify.SigUnknownKey, KeyID: otherKey, Expected: policyKey, Got: otherKey},
			Duration: 2 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "any", Filename: "tzdata-2025b-1-any.pkg.tar.zst", Name: "tzdata", Version: "2025b-1"},
			SHA256:   sha('f'), KeyID: policyKey,
			Err: &verify.SignatureError{Kind: verify.SigCommentMismatch, KeyID: policyKey,
				Expected: "tzdata-2025b-1-any.pkg.tar.zst", Got: "tzdata-2024a-1-any.pkg.tar.zst, \"rolled back\""},
			Duration: 2 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "gzip-1.13-4-x86_64.pkg.tar.zst", Name: "gzip", Version: "1.13-4"},
			SHA256:   sha('1'),
			Err:      &verify.SignatureError{Kind: verify.SigMalformed, Err: errors.New("line 2: 100% not base64: illegal base64 data at input byte 4")},
			Duration: time.Millisecond,
		},
		{
			// A failure the engine did not explain: the report must still give a reason.
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "coreutils-9.7-1-x86_64.pkg.tar.zst", Name: "coreutils", Version: "9.7-1"},
			Status:   verify.StatusBundleInvalid, SHA256: sha('2'), KeyID: policyKey, Duration: time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "curl-8.14.0-1-x86_64.pkg.tar.zst", Name: "curl", Version: "8.14.0-1"},
			SHA256:   sha('3'), KeyID: policyKey,
			Err: &verify.InvalidProofError{Err: &rekorv1.EntryError{Step: rekorv1.StepInclusion, Field: "rootHash",
				Expected: sha('4'), Got: sha('5'), LogIndex: 41, TreeSize: 230}},
			Duration: 4 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: "expat-2.7.1-1-x86_64.pkg.tar.zst", Name: "expat", Version: "2.7.1-1"},
			SHA256:   sha('6'), KeyID: policyKey,
			Err:      &verify.MissingError{What: "bundle", Filename: "expat-2.7.1-1-x86_64.pkg.tar.zst", Err: verify.ErrNotFound},
			Duration: time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "extra", Arch: "x86_64", Filename: evilName, Name: "evil", Version: "1-1"},
			SHA256:   sha('7'),
			Err:      &verify.HashMismatchError{Filename: evilName, Expected: sha('7'), Got: sha('8')},
			Duration: 30 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "extra", Arch: "x86_64", Filename: "python-3.13.3-1-x86_64.pkg.tar.zst", Name: "python", Version: "3.13.3-1"},
			SHA256:   sha('9'), KeyID: policyKey,
			Err:      &verify.NotInLogError{LeafHash: sha('0'), SearchHash: sha('a')},
			Duration: 80 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "extra", Arch: "x86_64", Filename: "qt6-base-6.9.0-1-x86_64.pkg.tar.zst", Name: "qt6-base", Version: "6.9.0-1"},
			SHA256:   sha('b'), KeyID: policyKey,
			Err:      &verify.LogUnavailableError{Op: "entries by index", Err: fmt.Errorf("GET http://127.0.0.1:3000/api/v1/log/entries/retrieve: %w", context.DeadlineExceeded)},
			Duration: 10 * time.Second,
		},
		{
			Artifact: verify.Artifact{Repo: "extra", Arch: "any", Filename: "python-pip-25.1-1-any.pkg.tar.zst", Name: "python-pip", Version: "25.1-1"},
			SHA256:   sha('c'), KeyID: policyKey, Entry: entry(12),
			Rebuild: &verify.RebuildVerdict{
				Confirmed:   []string{"https://rebuilder.a.example"},
				Bad:         []string{"https://rebuilder.b.example"},
				Unreachable: []string{"https://rebuilder.c.example"},
				Reasons: map[string]string{
					"https://rebuilder.b.example": "BAD",
					"https://rebuilder.c.example": "Get \"https://rebuilder.c.example/api/v0/pkgs/list\": context deadline exceeded",
				},
			},
			Err:      &verify.RebuildError{Required: 2, Confirmed: []string{"https://rebuilder.a.example"}},
			Duration: 5 * time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Repo: "multilib", Arch: "x86_64", Filename: "lib32-glibc-2.41+r9-1-x86_64.pkg.tar.zst", Name: "lib32-glibc", Version: "2.41+r9-1"},
			SHA256:   sha('d'), KeyID: policyKey,
			Err: &verify.SecurityError{Reason: "consistency proof from tree size 200 to 230 does not verify",
				Old: []byte("rekor.local - 1\n200\nq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n\n— rekor.local AbCd\n"),
				New: []byte("rekor.local - 1\n230\nEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vE=\n\n— rekor.local AbCd\n")},
			Duration: time.Millisecond,
		},
		{
			Artifact: verify.Artifact{Filename: "local-tool-1.0-1-x86_64.pkg.tar.zst", Name: "local-tool", Version: "1.0-1"},
			Status:   verify.StatusNotInRepository, SHA256: sha('e'),
			Err:      errors.New("local-tool is not in any sync database (installed with pacman -U?)"),
			Duration: time.Millisecond,
		},
	}
	for i := range res {
		if res[i].Err != nil && res[i].Status == "" {
			res[i].Status = verify.StatusOf(res[i].Err)
		}
	}
	return Report{
		Tool:    "bintrans",
		Version: "v0.0.0-test",
		Started: time.Date(2026, 11, 26, 7, 30, 0, 0, time.FixedZone("CET", 3600)),
		Mode:    ModeOnline,
		Log:     &LogInfo{URL: "http://127.0.0.1:3000", TreeSize: 230, RootHash: sha('f')},
		Results: res,
		Databases: []DBResult{
			{Repo: "core", Arch: "x86_64", Path: "https://mirror.example/core/os/x86_64/core.db", SHA256: sha('c'), Outcome: DBOK,
				Counter: 42, Issued: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), LogIndex: new(int64(9)), UUID: sha('d')},
			{Repo: "extra", Arch: "x86_64", Path: "https://mirror.example/extra/os/x86_64/extra.db", SHA256: sha('e'), Outcome: DBRefused,
				Counter: 17, Issued: time.Date(2026, 11, 15, 2, 0, 0, 0, time.UTC), LogIndex: new(int64(3)), UUID: sha('9'),
				Reason: "STALE: the statement for extra/x86_64 (counter 17) was issued 11d 5h ago\n\x1b[31m"},
			{Repo: "custom", Path: "custom.db", SHA256: sha('1'), Outcome: DBUnstated, Reason: "[custom] has no repository statement for custom.db"},
		},
	}
}

// allOKReport is a clean run: what most scheduled runs print.
func allOKReport() Report {
	r := fixtureReport()
	var ok []verify.Result
	for _, res := range r.Results {
		if res.OK() {
			ok = append(ok, res)
		}
	}
	r.Results = ok
	r.Databases = r.Databases[:1]
	r.Mode, r.Log, r.Started = ModeOffline, nil, time.Time{}
	return r
}

func render(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for name, r := range map[string]Report{"mixed": fixtureReport(), "ok": allOKReport()} {
		t.Run(name, func(t *testing.T) {
			golden(t, name+".json", render(t, func(b *bytes.Buffer) error { return WriteJSON(b, r) }))
			golden(t, name+".junit.xml", render(t, func(b *bytes.Buffer) error { return WriteJUnit(b, r) }))
			golden(t, name+".human", render(t, func(b *bytes.Buffer) error { return WriteHuman(b, r, false) }))
			golden(t, name+".human-color", render(t, func(b *bytes.Buffer) error { return WriteHuman(b, r, true) }))
			summary := filepath.Join(t.TempDir(), "summary.md")
			golden(t, name+".github", render(t, func(b *bytes.Buffer) error { return WriteGitHub(b, summary, r) }))
			md, err := os.ReadFile(summary)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".summary.md", md)
		})
	}
}

// TestWritersDoNotDependOnInputOrder: every permutation writes the same bytes.
func TestWritersDoNotDependOnInputOrder(t *testing.T) {
	r := fixtureReport()
	want := render(t, func(b *bytes.Buffer) error { return WriteJSON(b, r) })
	wantX := render(t, func(b *bytes.Buffer) error { return WriteJUnit(b, r) })
	rev := r
	rev.Results = slices.Clone(r.Results)
	slices.Reverse(rev.Results)
	if got := render(t, func(b *bytes.Buffer) error { return WriteJSON(b, rev) }); !bytes.Equal(got, want) {
		t.Error("JSON depends on input order")
	}
	if got := render(t, func(b *bytes.Buffer) error { return WriteJUnit(b, rev) }); !bytes.Equal(got, wantX) {
		t.Error("JUnit depends on input order")
	}
	// The caller's slice is not reordered.
	if rev.Results[0].Artifact.Filename != r.Results[len(r.Results)-1].Artifact.Filename {
		t.Error("a writer reordered Report.Results in place")
	}
}

func TestCounts(t *testing.T) {
	r := fixtureReport()
	r.Results = append(r.Results,
		verify.Result{Artifact: verify.Artifact{Filename: "x"}, Status: "zz-future"},
		verify.Result{Artifact: verify.Artifact{Filename: "y"}, Status: "aa-future"})
	counts := r.Counts()
	if len(counts) != len(Statuses)+2 {
		t.Fatalf("got %d counts, want %d", len(counts), len(Statuses)+2)
	}
	total := 0
	for i, c := range counts {
		total += c.Count
		if i < len(Statuses) && c.Status != Statuses[i] {
			t.Errorf("counts[%d] = %s, want %s", i, c.Status, Statuses[i])
		}
	}
	if total != len(r.Results) {
		t.Errorf("counts add up to %d, want %d", total, len(r.Results))
	}
	if counts[len(counts)-2].Status != "aa-future" || counts[len(counts)-1].Status != "zz-future" {
		t.Errorf("unknown statuses not appended by name: %v", counts[len(Statuses):])
	}
	if counts[0].Count != 2 || r.Failed() != len(r.Results)-2 || r.OK() {
		t.Errorf("ok count %d, failed %d, OK() %v", counts[0].Count, r.Failed(), r.OK())
	}
	if !(Report{}).OK() || !allOKReport().OK() {
		t.Error("an empty or all-ok report is not OK")
	}
}

func TestReasonIsCutAndEscaped(t *testing.T) {
	res := verify.Result{Status: verify.StatusBadSignature, Err: errors.New("bell\x07 esc\x1b[2J\n\tbidi\u202e " + strings.Repeat("x", 2*MaxReasonLen))}
	got := Reason(res)
	if !strings.HasPrefix(got, `bell\x07 esc\x1b[2J bidi\u202e x`) || !strings.HasSuffix(got, "…") || len(got) > MaxReasonLen {
		t.Errorf("Reason = %q (%d bytes)", got, len(got))
	}
	if got := Reason(verify.Result{Status: verify.StatusNotInLog}); got != "not-in-log" {
		t.Errorf("Reason without an error = %q", got)
	}
}

func TestReasonBounded(t *testing.T) {
	res := verify.Result{Status: verify.StatusBundleInvalid, Err: errors.New(strings.Repeat("ü", 2000))}
	got := Reason(res)
	if len(got) > MaxReasonLen || !strings.HasSuffix(got, "…") {
		t.Errorf("Reason of a 4000-byte error is %d bytes (max %d), suffix %q", len(got), MaxReasonLen, got[len(got)-3:])
	}
	if Reason(verify.Result{Status: verify.StatusOK}) != "" {
		t.Error("an ok result has a reason")
	}
}

// TestStatusesCoverEngine parses verify/types.go and checks that Statuses
// lists every Status constant the engine declares, and nothing else.
func TestStatusesCoverEngine(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../verify/types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []verify.Status
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Status" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("status constant with a non-literal value: %#v", v)
				}
				declared = append(declared, verify.Status(strings.Trim(lit.Value, `"`)))
			}
		}
	}
	if len(declared) < 10 {
		t.Fatalf("found only %d Status constants in verify/types.go: parser out of date?", len(declared))
	}
	got := slices.Sorted(slices.Values(Statuses))
	slices.Sort(declared)
	if !slices.Equal(got, declared) {
		t.Errorf("ci.Statuses = %v\nverify declares %v\n(update ci.Statuses and docs/report-schema.json)", got, declared)
	}
}
