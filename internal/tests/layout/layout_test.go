// Package layout enforces the import rules of docs/ARCHITECTURE.md: the
// layer table there is the source of truth, read by this test.
package layout

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bintrans/bintrans"

// testRow is the layer of test infrastructure and suites.
const testRow = 1 << 20

// layers parses the ```layers block of docs/ARCHITECTURE.md: "RANK PKG…"
// lines, PKG relative to the module, a trailing "/*" for a subtree; the
// row named "test" holds test infrastructure.
func layers(t *testing.T, root string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := bytes.Cut(b, []byte("```layers\n"))
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no ```layers block")
	}
	block, _, _ = bytes.Cut(block, []byte("```"))
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(block))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		rank := testRow
		if f[0] != "test" {
			if rank, err = strconv.Atoi(f[0]); err != nil {
				t.Fatalf("layers: %q: %v", sc.Text(), err)
			}
		}
		for _, p := range f[1:] {
			if _, dup := out[p]; dup {
				t.Fatalf("layers: %s placed twice", p)
			}
			out[p] = rank
		}
	}
	return out
}

// rankOf is the layer of a package path relative to the module.
func rankOf(ls map[string]int, p string) (int, bool) {
	if r, ok := ls[p]; ok {
		return r, true
	}
	for pat, r := range ls {
		if prefix, ok := strings.CutSuffix(pat, "/*"); ok && strings.HasPrefix(p, prefix+"/") {
			return r, true
		}
	}
	return 0, false
}

// TestImportLayers: every package of the module is placed in a layer; a
// product package imports only lower layers (so verify, in layer 1,
// imports only leaves, and it imports none either: rule 2), never testing
// nor test infrastructure; test infrastructure never imports the command.
func TestImportLayers(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	ls := layers(t, root)
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Fields(line)
		pkg, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			continue
		}
		seen++
		r, ok := rankOf(ls, pkg)
		if !ok {
			t.Errorf("%s is in no layer: place it in the ```layers table of docs/ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if r != testRow && imp == "testing" {
				t.Errorf("%s (product code) imports testing", pkg)
			}
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			dr, known := rankOf(ls, dep)
			switch {
			case !known:
				// Reported as a package of its own.
			case pkg == "verify":
				t.Errorf("verify imports %s: the engine imports no package of this module", dep)
			case r == testRow && dep == "cmd/bintrans":
				t.Errorf("%s imports cmd/bintrans: run the built binary", pkg)
			case r == testRow:
			case dr == testRow:
				t.Errorf("%s (product code) imports %s (test infrastructure)", pkg, dep)
			case dr >= r:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports run downwards only (docs/ARCHITECTURE.md)", pkg, r, dep, dr)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("go list found %d packages of the module", seen)
	}
	// The rules the doc states for infrastructure hold by the table: both
	// are in layer 1, above only leaves.
	for _, p := range []string{"internal/httpclient", "internal/durable", "verify"} {
		if r, _ := rankOf(ls, p); r != 1 {
			t.Errorf("%s is in layer %d, the doc's rules want 1", p, r)
		}
	}
}
