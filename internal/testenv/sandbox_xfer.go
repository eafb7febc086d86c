package testenv

import (
	"os"
	"strings"
	"testing"
)

// SetOption adds `key = value` to the [options] section of the sandbox's
// pacman.conf (e.g. XferCommand). pacman reads the first occurrence of a
// single-valued option, so a key is set once per sandbox.
func (s *Sandbox) SetOption(t testing.TB, key, value string) {
	t.Helper()
	s.editSection(t, "options", func(lines []string) []string {
		return append([]string{key + " = " + value}, lines...)
	})
}

// SetRepoOption adds `key = value` to the [repo] section (e.g. SigLevel).
func (s *Sandbox) SetRepoOption(t testing.TB, repo, key, value string) {
	t.Helper()
	s.editSection(t, repo, func(lines []string) []string {
		return append([]string{key + " = " + value}, lines...)
	})
}

// SetServers replaces the Server lines of the [repo] section with urls, in
// order (e.g. a file:// URL of RepoDir, or another HTTP server).
func (s *Sandbox) SetServers(t testing.TB, repo string, urls ...string) {
	t.Helper()
	s.editSection(t, repo, func(lines []string) []string {
		var out []string
		for _, u := range urls {
			out = append(out, "Server = "+u)
		}
		for _, l := range lines {
			if k, _, _ := strings.Cut(l, "="); strings.TrimSpace(k) != "Server" {
				out = append(out, l)
			}
		}
		return out
	})
}

// editSection rewrites the body lines of section name in pacman.conf.
func (s *Sandbox) editSection(t testing.TB, name string, edit func([]string) []string) {
	t.Helper()
	b, err := os.ReadFile(s.Conf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "["+name+"]" {
			start = i + 1
			break
		}
	}
	if start < 0 {
		t.Fatalf("testenv: pacman.conf has no [%s] section", name)
	}
	end := len(lines)
	for i := start; i < len(lines); i++ {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "[") {
			end = i
			break
		}
	}
	body := edit(append([]string(nil), lines[start:end]...))
	out := append(append(append([]string(nil), lines[:start]...), body...), lines[end:]...)
	if err := os.WriteFile(s.Conf, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
