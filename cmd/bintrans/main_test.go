package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the txtar scripts run "bintrans" as a real process backed by
// this test binary.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"bintrans": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs every cmd/bintrans/testdata/script/*.txtar story. The
// gpgkey command (operator_script_test.go) gives a script a GnuPG key.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"gpgkey": cmdGPGKey},
	})
}
