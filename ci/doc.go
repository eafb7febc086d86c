// Package ci turns the verification engine's per-package results into
// reports for machines and people: a versioned JSON document
// (docs/report-schema.json), JUnit XML for test dashboards, GitHub Actions
// workflow commands plus a Markdown job summary, and an aligned human summary.
//
// Every writer is deterministic: results are ordered by (repo, arch,
// filename) and nothing depends on map order or the clock, except the
// Report.Started time that the caller sets (and can leave zero).
//
// Strings that come from the outside world — file names from a repository
// database, reasons that quote a log's answer — are untrusted. Each writer
// escapes them for its format, and control characters never reach a
// terminal, a workflow command or a Markdown table. The writers never decide
// anything: Report.OK and the statuses are the engine's verdicts.
package ci
