package cmdline

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDifferentialPacman checks the model against the real pacman 6.0.2:
// random command lines built from a vocabulary of the options that matter
// (abbreviated, attached, clustered, repeated, after targets, after "--",
// with and without POSIXLY_CORRECT) are given to `pacman -Qv`, which
// prints its Root, DB Path, Cache Dirs, configuration file and Targets.
// Where pacman refuses the command line, the model must refuse it too;
// where pacman accepts it, the model must give the same values.
func TestDifferentialPacman(t *testing.T) {
	pacman, err := exec.LookPath("pacman")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs pacman (pacman-package-manager)")
		}
		t.Skip("needs pacman")
	}
	dir := t.TempDir()
	for _, d := range []string{"R", "R2", "B", "B2", "DB/local"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "c.conf")
	conf2 := filepath.Join(dir, "c2.conf")
	for _, c := range []string{conf, conf2} {
		if err := os.WriteFile(c, []byte("[options]\nDBPath = "+dir+"/DB/\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vocab := []string{
		"-Qv", "-Q", "-v", "-q", "-Qvq", "--query", "--verbose", "--noconfirm", "--nocon", "--color=never", "--col", "never",
		"--root", "R/", "-rR/", "-r", "--ro", "--roo=R2/", "R2", "-Qvr", "--root=",
		"--dbpath", "B/", "-b", "--dbp=B2/", "-bB/", "--db", "B2",
		"--cachedir", "/X/", "--cach=/Y", "--cache", "cache/rel", "--cachedir=",
		"--config", conf2, "--confi", "--co", "--conf=" + conf,
		"--", "tgt", "t2", "--sys", "--sysupgrade", "--debug=1", "--debug", "1", "--frob", "-Z", "-S", "--arch", "x86_64",
		"--logf", "/L", "--hookd=/H/", "--gpgd", "/G/", "--needed=x",
	}
	r := rand.New(rand.NewPCG(16, 2))
	n := 200
	if testing.Short() {
		n = 60
	}
	accepted := 0
	for i := 0; i < n; i++ {
		args := []string{"--config", conf}
		for k := r.IntN(7); k > 0; k-- {
			args = append(args, vocab[r.IntN(len(vocab))])
		}
		// Most lines carry -Qv so that pacman prints its paths.
		if r.IntN(5) > 0 {
			args = append(args[:2], append([]string{"-Qv"}, args[2:]...)...)
		}
		posix := r.IntN(4) == 0
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			cmd := exec.Command(pacman, args...)
			cmd.Dir = dir
			cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
			if posix {
				cmd.Env = append(cmd.Env, "POSIXLY_CORRECT=1")
			}
			cmd.Stdin = bytes.NewReader(nil)
			out, _ := cmd.CombinedOutput()
			got := pacmanView(string(out))
			inv, err := Parse(append([]string{"pacman"}, args...), posix)
			desc := fmt.Sprintf("pacman %q (POSIXLY_CORRECT=%v)", args, posix)
			switch {
			case strings.Contains(string(out), "no operation specified"):
				if err == nil && inv.Op != OpNone {
					t.Fatalf("%s: pacman saw no operation, model saw %q", desc, inv.Op)
				}
				return
			case strings.Contains(string(out), "error: invalid option '"):
				// An option that is valid, but not for this operation: the
				// model does not check per-operation validity (pacman exits
				// before any transaction).
				return
			}
			if parseRefused(string(out)) {
				if err == nil {
					t.Fatalf("%s: pacman refused the command line, model accepted %+v\n%s", desc, inv, out)
				}
				return
			}
			if got == nil {
				// pacman printed no paths: not -Qv, or it failed later
				// (a root that does not exist, an unreadable config).
				return
			}
			if err != nil && strings.Contains(err.Error(), "empty --cachedir") {
				return // undefined behaviour in pacman; the model refuses it on purpose
			}
			if err != nil {
				t.Fatalf("%s: pacman accepted, model refused: %v\n%s", desc, err, out)
			}
			accepted++
			want := modelView(inv, dir, conf)
			for _, k := range []string{"Root", "Conf File", "DB Path", "Cache Dirs", "Targets"} {
				if got[k] != want[k] {
					t.Errorf("%s: %s: pacman %q, model %q", desc, k, got[k], want[k])
				}
			}
		})
	}
	t.Logf("%d of %d command lines accepted by pacman and compared", accepted, n)
	if accepted < n/4 {
		t.Errorf("only %d of %d lines were accepted: the vocabulary does not exercise the model", accepted, n)
	}
}

// parseRefused reports whether pacman's output is a command-line error:
// getopt's messages ("pacman: option '--db' is ambiguous…", "pacman:
// unrecognized option", "pacman: invalid option -- 'Z'", "requires an
// argument") or parseargs' own ("only one operation", "invalid option").
func parseRefused(out string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "pacman: ") || strings.Contains(line, "only one operation may be used") ||
			strings.HasPrefix(line, "error: invalid option") {
			return true
		}
	}
	return false
}

// pacmanView reads the -Qv lines ("Root      : /x/"), nil when absent.
func pacmanView(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		switch k {
		case "Root", "Conf File", "DB Path", "Cache Dirs", "Targets":
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	if m["Root"] == "" {
		return nil
	}
	return m
}

// modelView is what pacman prints for inv, run in dir with the test's
// configuration (DBPath dir/DB/, no RootDir, no CacheDir): root and dbpath
// through realpath, cache dirs as given with a trailing '/'.
func modelView(inv *Invocation, dir, conf string) map[string]string {
	abs := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return strings.TrimSuffix(p, "/") + "/"
	}
	m := map[string]string{"Root": "/", "Conf File": conf, "DB Path": dir + "/DB/", "Targets": "None"}
	if inv.Config != "" {
		m["Conf File"] = inv.Config
	}
	if inv.Root != "" {
		m["Root"] = abs(inv.Root)
	}
	if inv.DBPath != "" {
		m["DB Path"] = abs(inv.DBPath)
	}
	var cache []string
	for _, c := range inv.CacheDirs {
		cache = append(cache, strings.TrimSuffix(c, "/")+"/")
	}
	if len(cache) == 0 {
		cache = []string{"/var/cache/pacman/pkg/"}
	}
	m["Cache Dirs"] = strings.Join(cache, " ")
	if len(inv.Targets) > 0 {
		m["Targets"] = strings.Join(inv.Targets, " ")
	}
	return m
}
