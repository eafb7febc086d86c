package repodb_test

import "os/exec"

func runCmd(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}
