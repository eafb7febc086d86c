package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// HelpCmd prints the help of a command: 'bintrans help scan' prints exactly
// what 'bintrans scan --help' prints (kong has no help command of its own).
type HelpCmd struct {
	Command []string `arg:"" optional:"" name:"command" help:"The command (and sub-command) to describe; none: the overview."`
}

// Run checks the command path against the model, then runs
// "<command>… --help" through the real command line, so both print the same.
func (h *HelpCmd) Run(g *Globals, kctx *kong.Context) error {
	node := kctx.Model.Node
	for _, name := range h.Command {
		child := findChild(node, name)
		if child == nil {
			return usageErrorf("run 'bintrans help' for the list of commands", "help: unknown command %q", strings.TrimSpace(commandPath(node)+" "+name))
		}
		node = child
	}
	if code := run(append(append([]string{}, h.Command...), "--help"), g.Stdin, g.Stdout, g.Stderr); code != 0 {
		return &cliError{code: code, msg: "help failed"}
	}
	return nil
}

// findChild returns the visible sub-command of node called name (or one of
// its aliases), or nil.
func findChild(node *kong.Node, name string) *kong.Node {
	for _, c := range node.Children {
		if c.Type != kong.CommandNode || c.Hidden {
			continue
		}
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// DocsCmd writes the man pages and shell completions generated from the
// command-line model (hidden: for packagers, run by the PKGBUILD).
type DocsCmd struct {
	Out string `arg:"" name:"dir" placeholder:"DIR" help:"Output directory: man/*.1 and completions/{bintrans.bash,_bintrans,bintrans.fish} are written under it."`
}

// Run writes every file, creating the directories.
func (d *DocsCmd) Run(g *Globals, kctx *kong.Context) error {
	files := GenerateDocs(kctx.Model)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(d.Out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return runErrorf(err, "check the output directory", "docs: %v", err)
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return runErrorf(err, "check the output directory", "docs: %v", err)
		}
		fmt.Fprintln(g.Stdout, p)
	}
	return nil
}

// GenerateDocs returns the man pages (man/bintrans.1 and one
// man/bintrans-<command>.1 per visible command, sub-commands joined by "-")
// and completions (completions/bintrans.bash, _bintrans for zsh,
// bintrans.fish), keyed by relative path. Hidden commands and flags are left
// out. The output depends only on the model: it is deterministic.
func GenerateDocs(app *kong.Application) map[string][]byte {
	files := map[string][]byte{}
	cmds := visibleCommands(app.Node)
	files["man/bintrans.1"] = manMain(app, cmds)
	for _, c := range cmds {
		files["man/"+manName(c)+".1"] = manCommand(c)
	}
	files["completions/bintrans.bash"] = bashCompletion(app, cmds)
	files["completions/_bintrans"] = zshCompletion(app, cmds)
	files["completions/bintrans.fish"] = fishCompletion(app, cmds)
	return files
}

// visibleCommands lists every non-hidden command node, depth first, in
// model order.
func visibleCommands(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if c.Type != kong.CommandNode || c.Hidden {
			continue
		}
		out = append(out, c)
		out = append(out, visibleCommands(c)...)
	}
	return out
}

// commandPath is the command's words after "bintrans": "audit verify-chain".
func commandPath(n *kong.Node) string {
	var parts []string
	for ; n != nil && n.Type == kong.CommandNode; n = n.Parent {
		parts = append([]string{n.Name}, parts...)
	}
	return strings.Join(parts, " ")
}

// manName is the page name: bintrans-audit-verify-chain.
func manName(n *kong.Node) string {
	return "bintrans-" + strings.ReplaceAll(commandPath(n), " ", "-")
}

// visibleFlags are the flags a command accepts (its own and its parents'),
// without hidden ones, in help order.
func visibleFlags(n *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, group := range n.AllFlags(true) {
		out = append(out, group...)
	}
	return out
}

// roff escapes text for a roff line: backslashes, and a leading '.' or '\”
// that would start a request; '-' becomes \- so flags copy-paste; non-ASCII
// runes become \[uXXXX] (troff reads bytes, not UTF-8).
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var u strings.Builder
	for _, r := range s {
		if r < 0x80 {
			u.WriteRune(r)
		} else {
			fmt.Fprintf(&u, `\[u%04X]`, r)
		}
	}
	s = u.String()
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(line)
	}
	return b.String()
}

// roffText writes free text (a help detail): paragraphs become .PP, indented
// lines (examples, lists) are kept verbatim in no-fill blocks.
func roffText(b *bytes.Buffer, text string) {
	inVerbatim := false
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		indented := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		switch {
		case strings.TrimSpace(line) == "":
			if inVerbatim {
				b.WriteString(".fi\n.RE\n")
				inVerbatim = false
			}
			b.WriteString(".PP\n")
		case indented:
			if !inVerbatim {
				b.WriteString(".RS 4\n.nf\n")
				inVerbatim = true
			}
			b.WriteString(roff(strings.TrimSpace(line)) + "\n")
		default:
			if inVerbatim {
				b.WriteString(".fi\n.RE\n")
				inVerbatim = false
			}
			b.WriteString(roff(line) + "\n")
		}
	}
	if inVerbatim {
		b.WriteString(".fi\n.RE\n")
	}
}

func manHeader(b *bytes.Buffer, name, summary string) {
	fmt.Fprintf(b, ".\\\" Generated by 'bintrans docs' from the command-line model; do not edit.\n")
	fmt.Fprintf(b, ".TH %s 1 \"\" \"bintrans %s\" \"bintrans manual\"\n", strings.ToUpper(roff(name)), roff(version))
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", roff(name), roff(firstSentence(summary)))
}

// firstSentence shortens a help string for NAME lines and completions.
func firstSentence(s string) string {
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	if i := strings.Index(s, ": "); i > 0 && i < 20 { // "Auditor: …" keeps the role
		return s
	}
	return strings.TrimSuffix(s, ".")
}

func manFlags(b *bytes.Buffer, flags []*kong.Flag) {
	for _, f := range flags {
		b.WriteString(".TP\n")
		fmt.Fprintf(b, "\\fB%s\\fR\n", roff(f.String()))
		help := f.Help
		if f.HasDefault && f.Default != "" {
			help += " (default: " + f.Default + ")"
		}
		if len(f.Envs) > 0 {
			help += " ($" + strings.Join(f.Envs, ", $") + ")"
		}
		if f.IsSlice() || f.IsMap() {
			if !strings.Contains(help, "Repeatable") {
				help += " Repeatable."
			}
		}
		b.WriteString(roff(help) + "\n")
	}
}

func manExit(b *bytes.Buffer) {
	b.WriteString(".SH EXIT STATUS\n")
	for _, e := range [][2]string{
		{"0", "everything verified (or the command did what was asked)"},
		{"1", "at least one package failed verification (audit, monitor: a finding)"},
		{"2", "usage or configuration error"},
		{"3", "could not run: I/O error, or a service needed in this mode is unreachable"},
	} {
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", e[0], roff(e[1]))
	}
}

func manMain(app *kong.Application, cmds []*kong.Node) []byte {
	var b bytes.Buffer
	manHeader(&b, "bintrans", "binary transparency for pacman")
	b.WriteString(".SH SYNOPSIS\n.B bintrans\n[\\fIflags\\fR] \\fIcommand\\fR [\\fIargs\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	desc, _, _ := strings.Cut(app.Help, "\n\nExit codes")
	roffText(&b, desc)
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, ".TP\n\\fBbintrans %s\\fR\n%s\nSee \\fB%s\\fR(1).\n", roff(commandPath(c)), roff(c.Help), roff(manName(c)))
	}
	b.WriteString(".SH OPTIONS\n")
	manFlags(&b, visibleFlags(app.Node))
	b.WriteString(".SH CONFIGURATION\n")
	roffText(&b, `Every command reads /etc/bintrans.conf (or --config FILE, or $BINTRANS_CONFIG; bintrans hook ignores $BINTRANS_CONFIG, with a warning: the policy of the pacman hook is never taken from pacman's environment), in pacman.conf syntax: "key = value", where each key is a flag name without "--"; a repeatable flag is given by repeating its line, and a bare key means "key = true". A "[repo NAME]" section holds per-repository settings: "transparency-url = URL" there is --repo-transparency-url NAME=URL. Flags on the command line win over the file. An unknown key is an error naming the file and line. Check a configuration with bintrans doctor.`)
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/etc/bintrans.conf", "the configuration (an annotated example: /usr/share/doc/bintrans/bintrans.conf.example)"},
		{"/usr/share/libalpm/hooks/bintrans.hook", "the pacman hook running bintrans hook before every transaction"},
		{"/var/lib/bintrans", "the last verified checkpoint of the log (rollback and split-view detection) and the newest repository statement accepted per repository and architecture"},
		{"/usr/lib/systemd/system/bintrans-check-dbs.timer", "checks the sync databases against their repository statements daily (bintrans check-dbs); enable with systemctl enable --now bintrans-check-dbs.timer"},
		{"/var/lib/bintrans-monitor", "the monitor's state (bintrans-monitor.service, bintrans-monitor.timer)"},
	} {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roff(f[0]), roff(f[1]))
	}
	manExit(&b)
	b.WriteString(".SH SEE ALSO\n")
	var refs []string
	for _, c := range cmds {
		refs = append(refs, fmt.Sprintf("\\fB%s\\fR(1)", roff(manName(c))))
	}
	refs = append(refs, `\fBpacman\fR(8)`, `\fBalpm-hooks\fR(5)`, `\fBminisign\fR(1)`)
	b.WriteString(strings.Join(refs, ",\n") + "\n")
	return b.Bytes()
}

func manCommand(c *kong.Node) []byte {
	var b bytes.Buffer
	manHeader(&b, manName(c), c.Help)
	b.WriteString(".SH SYNOPSIS\n")
	syn := "bintrans " + commandPath(c) + " [flags]"
	for _, p := range c.Positional {
		syn += " " + p.Summary()
	}
	if len(c.Children) > 0 {
		syn += " <command>"
	}
	fmt.Fprintf(&b, ".B %s\n", roff(syn))
	b.WriteString(".SH DESCRIPTION\n")
	roffText(&b, c.Help)
	if c.Detail != "" {
		b.WriteString(".PP\n")
		roffText(&b, c.Detail)
	}
	if len(c.Children) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, s := range c.Children {
			if s.Type == kong.CommandNode && !s.Hidden {
				fmt.Fprintf(&b, ".TP\n\\fBbintrans %s\\fR\n%s\nSee \\fB%s\\fR(1).\n", roff(commandPath(s)), roff(s.Help), roff(manName(s)))
			}
		}
	}
	if len(c.Positional) > 0 {
		b.WriteString(".SH ARGUMENTS\n")
		for _, p := range c.Positional {
			fmt.Fprintf(&b, ".TP\n\\fI%s\\fR\n%s\n", roff(p.Summary()), roff(p.Help))
		}
	}
	b.WriteString(".SH OPTIONS\n")
	manFlags(&b, visibleFlags(c))
	manExit(&b)
	b.WriteString(".SH SEE ALSO\n\\fBbintrans\\fR(1)\n")
	return b.Bytes()
}

// takesValue reports whether a flag needs an argument.
func takesValue(f *kong.Flag) bool { return !f.IsBool() && !f.IsCounter() }

// bashCompletion completes commands, sub-commands and flags; a flag taking
// a FILE, DIR or DB completes paths, as do arguments.
func bashCompletion(app *kong.Application, cmds []*kong.Node) []byte {
	var b bytes.Buffer
	dashed := func(n *kong.Node) string { return strings.ReplaceAll(commandPath(n), " ", "-") }
	b.WriteString("# bash completion for bintrans; generated by 'bintrans docs', do not edit.\n")
	b.WriteString("_bintrans() {\n\tlocal cur prev path w i subs flags\n\tcur=${COMP_WORDS[COMP_CWORD]}\n\tprev=${COMP_WORDS[COMP_CWORD-1]}\n")
	b.WriteString("\tpath=\n\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tw=${COMP_WORDS[i]}\n\t\tcase \"$path/$w\" in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t\t%q) path=%q ;;\n", dashed(c.Parent)+"/"+c.Name, dashed(c))
	}
	b.WriteString("\t\tesac\n\tdone\n")
	fileFlags := map[string]bool{}
	for _, n := range append([]*kong.Node{app.Node}, cmds...) {
		for _, f := range visibleFlags(n) {
			if fishValue(f) == " -r -F" {
				fileFlags["--"+f.Name] = true
			}
		}
	}
	if len(fileFlags) > 0 {
		fmt.Fprintf(&b, "\tcase $prev in\n\t%s)\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\t\treturn ;;\n\tesac\n", strings.Join(sortedKeys(fileFlags), "|"))
	}
	b.WriteString("\tcase $path in\n")
	for _, n := range append([]*kong.Node{app.Node}, cmds...) {
		var flags []string
		for _, f := range visibleFlags(n) {
			flags = append(flags, "--"+f.Name)
		}
		fmt.Fprintf(&b, "\t%q) subs=%q flags=%q ;;\n", dashed(n), strings.Join(childNames(n), " "), strings.Join(flags, " "))
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tif [[ $cur == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	b.WriteString("\telif [[ -n $subs ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n")
	b.WriteString("\telse\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n}\ncomplete -F _bintrans bintrans\n")
	return b.Bytes()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// zshQuote escapes a description for an _arguments spec inside single quotes.
func zshQuote(s string) string {
	r := strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`)
	return r.Replace(firstSentence(s))
}

func zshCompletion(app *kong.Application, cmds []*kong.Node) []byte {
	var b bytes.Buffer
	b.WriteString("#compdef bintrans\n# zsh completion for bintrans; generated by 'bintrans docs', do not edit.\n\n")
	funcName := func(n *kong.Node) string {
		if n.Type != kong.CommandNode {
			return "_bintrans"
		}
		return "_bintrans_" + strings.NewReplacer(" ", "_", "-", "_").Replace(commandPath(n))
	}
	for _, n := range append([]*kong.Node{app.Node}, cmds...) {
		fmt.Fprintf(&b, "%s() {\n\tlocal line state\n\t_arguments -C \\\n", funcName(n))
		for _, f := range visibleFlags(n) {
			spec := "--" + f.Name
			if f.IsSlice() || f.IsMap() {
				spec = "*" + spec
			}
			spec += "[" + zshQuote(f.Help) + "]"
			if takesValue(f) {
				action := ""
				if f.PlaceHolder == "FILE" || f.PlaceHolder == "DB" {
					action = "_files"
				} else if f.PlaceHolder == "DIR" {
					action = "_files -/"
				}
				spec += ":" + strings.ToLower(strings.ReplaceAll(f.FormatPlaceHolder(), ":", "")) + ":" + action
			}
			fmt.Fprintf(&b, "\t\t'%s' \\\n", spec)
		}
		var subs []*kong.Node
		for _, s := range n.Children {
			if s.Type == kong.CommandNode && !s.Hidden {
				subs = append(subs, s)
			}
		}
		if len(subs) == 0 {
			b.WriteString("\t\t'*:file:_files'\n}\n\n")
			continue
		}
		b.WriteString("\t\t'1: :->cmd' \\\n\t\t'*:: :->args'\n")
		b.WriteString("\tcase $state in\n\tcmd)\n\t\tlocal -a cmds\n\t\tcmds=(\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "\t\t\t'%s:%s'\n", s.Name, zshQuote(s.Help))
		}
		b.WriteString("\t\t)\n\t\t_describe command cmds ;;\n\targs)\n\t\tcase $line[1] in\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "\t\t%s) %s ;;\n", s.Name, funcName(s))
		}
		b.WriteString("\t\tesac ;;\n\tesac\n}\n\n")
	}
	b.WriteString("_bintrans \"$@\"\n")
	return b.Bytes()
}

// fishQuote quotes s for fish inside single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(firstSentence(s)) + "'"
}

func fishCompletion(app *kong.Application, cmds []*kong.Node) []byte {
	var b bytes.Buffer
	b.WriteString("# fish completion for bintrans; generated by 'bintrans docs', do not edit.\ncomplete -c bintrans -f\n")
	for _, f := range visibleFlags(app.Node) {
		fmt.Fprintf(&b, "complete -c bintrans -l %s%s -d %s\n", f.Name, fishValue(f), fishQuote(f.Help))
	}
	for _, c := range cmds {
		cond := "__fish_use_subcommand"
		if c.Parent.Type == kong.CommandNode {
			cond = fmt.Sprintf("__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s", c.Parent.Name, strings.Join(childNames(c.Parent), " "))
		}
		fmt.Fprintf(&b, "complete -c bintrans -n '%s' -a %s -d %s\n", cond, c.Name, fishQuote(c.Help))
	}
	for _, c := range cmds {
		own := map[string]bool{}
		for _, f := range visibleFlags(app.Node) {
			own[f.Name] = true
		}
		for _, f := range visibleFlags(c) {
			if own[f.Name] {
				continue // the global flags are completed everywhere
			}
			fmt.Fprintf(&b, "complete -c bintrans -n '__fish_seen_subcommand_from %s' -l %s%s -d %s\n", c.Name, f.Name, fishValue(f), fishQuote(f.Help))
		}
	}
	return b.Bytes()
}

func childNames(n *kong.Node) []string {
	var out []string
	for _, c := range n.Children {
		if c.Type == kong.CommandNode && !c.Hidden {
			out = append(out, c.Name)
		}
	}
	return out
}

// fishValue is the option telling fish a flag takes a value (-r) and, for
// files, that paths complete (-F).
func fishValue(f *kong.Flag) string {
	switch {
	case !takesValue(f):
		return ""
	case f.PlaceHolder == "FILE" || f.PlaceHolder == "DIR" || f.PlaceHolder == "DB":
		return " -r -F"
	default:
		return " -r"
	}
}
