package freshness

import "fmt"

// Mode is a client's policy for one repository's statements (the config's
// `[repo NAME] statements = …`, the flag --repo-statements NAME=MODE).
type Mode string

// The modes.
const (
	// ModeRequired: a database without a statement is refused.
	ModeRequired Mode = "required"
	// ModeOptional (the default): a repository for which this client never
	// accepted a statement may have none (a warning on every run: every
	// repository signed before statements existed); once one was accepted,
	// a database without one is refused, so a mirror cannot turn the
	// protection off by withholding statements.
	ModeOptional Mode = "optional"
	// ModeOff: the repository's statements are not looked at (a warning on
	// every run).
	ModeOff Mode = "off"
)

// DefaultMode is the mode of a repository the configuration does not name.
const DefaultMode = ModeOptional

// ParseMode reads a mode as the configuration writes it.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeRequired, ModeOptional, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("statements mode %q: want required, optional or off", s)
}
