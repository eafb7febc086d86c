package main

import "testing"

// TestConfigPathHookIgnoresEnvironment: $BINTRANS_CONFIG names the
// configuration of every command but the pacman hook, whose policy comes
// from /etc/bintrans.conf or the --config of its root-owned hook file.
func TestConfigPathHookIgnoresEnvironment(t *testing.T) {
	t.Setenv("BINTRANS_CONFIG", "/env.conf")
	for _, tc := range []struct {
		args     []string
		path     string
		explicit bool
		ignored  string
	}{
		{[]string{"hook"}, defaultConfigPath, false, "/env.conf"},
		{[]string{"-v", "hook", "--deadline", "1m"}, defaultConfigPath, false, "/env.conf"},
		{[]string{"--verbose", "hook"}, defaultConfigPath, false, "/env.conf"},
		{[]string{"hook", "--config", "/hook.conf"}, "/hook.conf", true, ""},
		{[]string{"--config=/hook.conf", "hook"}, "/hook.conf", true, ""},
		{[]string{"verify", "hook"}, "/env.conf", true, ""},
		{[]string{"doctor"}, "/env.conf", true, ""},
		{[]string{"--config", "hook", "verify"}, "hook", true, ""},
		{nil, "/env.conf", true, ""},
	} {
		path, explicit, ignored := configPath(tc.args)
		if path != tc.path || explicit != tc.explicit || ignored != tc.ignored {
			t.Errorf("%q: %q %v %q, want %q %v %q", tc.args, path, explicit, ignored, tc.path, tc.explicit, tc.ignored)
		}
	}
	t.Setenv("BINTRANS_CONFIG", "")
	if path, explicit, ignored := configPath([]string{"hook"}); path != defaultConfigPath || explicit || ignored != "" {
		t.Errorf("no environment: %q %v %q", path, explicit, ignored)
	}
}
