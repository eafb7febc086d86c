// Package deps pins the project's required modules in go.mod while the
// packages that use them are being written, so that concurrent work never
// races on `go get`. Delete it once every import below is used for real.
package deps

import (
	_ "github.com/alecthomas/kong"
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/jedisct1/go-minisign"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/sigstore/rekor/pkg/client"
	_ "github.com/sigstore/rekor/pkg/generated/client/entries"
	_ "github.com/sigstore/rekor/pkg/generated/client/index"
	_ "github.com/sigstore/rekor/pkg/generated/client/tlog"
	_ "github.com/sigstore/rekor/pkg/generated/models"
	_ "github.com/transparency-dev/merkle/proof"
	_ "github.com/transparency-dev/merkle/rfc6962"
	_ "github.com/ulikunitz/xz"
	_ "golang.org/x/net/proxy"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/term"
)
