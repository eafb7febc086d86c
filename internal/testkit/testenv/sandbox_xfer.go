package testenv

import (
	"os"
	"strings"
	"testing"
)

// SetOption sets `key = value` in the [options] section of the sandbox's
// pacman.conf (e.g. XferCommand), replacing the key's earlier lines.
func (s *Sandbox) SetOption(t testing.TB, key, value string) {
	t.Helper()
	s.editSection(t, "options", setKey(key, value))
}

// SetRepoOption sets `key = value` in the [repo] section (e.g. SigLevel),
// replacing the key's earlier lines.
func (s *Sandbox) SetRepoOption(t testing.TB, repo, key, value string) {
	t.Helper()
	s.editSection(t, repo, setKey(key, value))
}

func setKey(key, value string) func([]string) []string {
	return func(lines []string) []string {
		out := []string{key + " = " + value}
		for _, l := range lines {
			if k, _, _ := strings.Cut(l, "="); strings.TrimSpace(k) != key {
				out = append(out, l)
			}
		}
		return out
	}
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
