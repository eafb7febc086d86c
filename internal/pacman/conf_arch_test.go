package pacman

import (
	"fmt"
	"strings"
)

// archStockConf is Arch Linux's /etc/pacman.conf as the pacman package
// installs it (pacman 6.1/7.0; directives pacman 6.0.2 does not know are
// commented out there), with the mirror list under @DIR@.
const archStockConf = `#
# /etc/pacman.conf
#
# See the pacman.conf(5) manpage for option and repository directives

#
# GENERAL OPTIONS
#
[options]
# The following paths are commented out with their default values listed.
# If you wish to use different paths, uncomment and update the paths.
#RootDir     = /
#DBPath      = /var/lib/pacman/
#CacheDir    = /var/cache/pacman/pkg/
#LogFile     = /var/log/pacman.log
#GPGDir      = /etc/pacman.d/gnupg/
#HookDir     = /etc/pacman.d/hooks/
HoldPkg     = pacman glibc
#XferCommand = /usr/bin/curl -L -C - -f -o %o %u
#XferCommand = /usr/bin/wget --passive-ftp -c -O %o %u
#CleanMethod = KeepInstalled
Architecture = auto

# Pacman won't upgrade packages listed in IgnorePkg and members of IgnoreGroup
#IgnorePkg   =
#IgnoreGroup =

#NoUpgrade   =
#NoExtract   =

# Misc options
#UseSyslog
#Color
#NoProgressBar
CheckSpace
#VerbosePkgLists
ParallelDownloads = 5
#DownloadUser = alpm
#DisableSandbox

# By default, pacman accepts packages signed by keys that its local keyring
# trusts (see pacman-key and its man page), as well as unsigned packages.
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional
#RemoteFileSigLevel = Required

# NOTE: You must run ` + "`pacman-key --init`" + ` before first using pacman; the local
# keyring can then be populated with the keys of all official Arch Linux
# packagers with ` + "`pacman-key --populate archlinux`" + `.

#
# REPOSITORIES
#   - can be defined here or included from another file
#   - pacman will search repositories in the order defined here
#   - local/custom mirrors can be added here or in separate files
#   - repositories listed first will take precedence when packages
#     have identical names, regardless of version number
#   - URLs will have $repo replaced by the name of the current repo
#   - URLs will have $arch replaced by the name of the architecture
#
# Repository entries are of the format:
#       [repo-name]
#       Server = ServerName
#       Include = IncludePath
#
# The header [repo-name] is crucial - it must be present and
# uncommented to enable the repo.
#

# The testing repositories are disabled by default. To enable, uncomment the
# repo name header and Include lines. You can add preferred servers immediately
# after the header, and they will be used before the default mirrors.

#[core-testing]
#Include = /etc/pacman.d/mirrorlist

[core]
Include = @DIR@/pacman.d/mirrorlist

#[extra-testing]
#Include = /etc/pacman.d/mirrorlist

[extra]
Include = @DIR@/pacman.d/mirrorlist

# If you want to run 32 bit applications on your x86_64 system,
# enable the multilib repositories as required here.

#[multilib-testing]
#Include = /etc/pacman.d/mirrorlist

#[multilib]
#Include = /etc/pacman.d/mirrorlist

# An example of a custom package repository.  See the pacman manpage for
# tips on creating your own repositories.
#[custom]
#SigLevel = Optional TrustAll
#Server = file:///home/custompkgs
`

// archMirrorlist is a mirror list as pacman-mirrorlist installs it (about
// 1 000 lines, all commented out) with two mirrors enabled.
func archMirrorlist() string {
	var b strings.Builder
	b.WriteString("##\n## Arch Linux repository mirrorlist\n## Generated on 2026-01-01\n##\n\n## Worldwide\nServer = https://geo.mirror.pkgbuild.com/$repo/os/$arch\n#Server = http://mirror.rackspace.com/archlinux/$repo/os/$arch\n")
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&b, "\n## Country %d\n", i)
		for j := 0; j < 7; j++ {
			fmt.Fprintf(&b, "#Server = https://mirror%d-%d.example.net/pub/archlinux/$repo/os/$arch\n", i, j)
		}
	}
	b.WriteString("\n## Local\nServer = https://mirror.example.org/archlinux/$repo/os/$arch\n")
	return b.String()
}
