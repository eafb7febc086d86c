package ci

import (
	"bufio"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// JUnit XML in the shape that test dashboards (Jenkins, GitLab, the GitHub
// test-report actions) read: the elements and attributes of the common
// junit.xsd. Exported so tests and tools can decode a report.

// JUnitTestSuites is the document element.
type JUnitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []JUnitTestSuite `xml:"testsuite"`
}

// JUnitTestSuite holds the packages of one repo/arch.
type JUnitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	Cases      []JUnitTestCase `xml:"testcase"`
}

// JUnitProperty is a name/value pair of a suite.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitTestCase is one package.
type JUnitTestCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitProblem `xml:"failure,omitempty"`
	Error     *JUnitProblem `xml:"error,omitempty"`
}

// JUnitProblem is a <failure> or <error>: Type is the status, Message the
// one-line reason, Text the details.
type JUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// NewJUnit builds the JUnit document of r: one testsuite per repo/arch (in
// sorted order), one testcase per package named by its file name. A failed
// package has a <failure type="<status>" message="<reason>">; a package
// whose status is "unavailable" (it could not be checked) has an <error>
// instead, as JUnit distinguishes "failed" from "could not run".
func NewJUnit(r Report) JUnitTestSuites {
	doc := JUnitTestSuites{Name: junitName(r)}
	var total time.Duration
	var suite *JUnitTestSuite
	var suiteTime time.Duration
	flush := func() {
		if suite != nil {
			suite.Time = seconds(suiteTime)
			doc.Suites = append(doc.Suites, *suite)
		}
	}
	props := junitProperties(r)
	for _, res := range r.Sorted() {
		loc := location(res.Artifact)
		if suite == nil || suite.Name != loc {
			flush()
			suite = &JUnitTestSuite{Name: loc, Properties: props}
			if !r.Started.IsZero() {
				suite.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
			}
			suiteTime = 0
		}
		tc := JUnitTestCase{
			Name:      safetext.Line(res.Artifact.Filename),
			ClassName: junitClass(res.Artifact),
			Time:      seconds(res.Duration),
		}
		suite.Tests++
		doc.Tests++
		if !res.OK() {
			p := &JUnitProblem{Message: Reason(res), Type: string(res.Status), Text: junitDetails(res)}
			if res.Status == verify.StatusUnavailable {
				tc.Error = p
				suite.Errors++
				doc.Errors++
			} else {
				tc.Failure = p
				suite.Failures++
				doc.Failures++
			}
		}
		suiteTime += res.Duration
		total += res.Duration
		suite.Cases = append(suite.Cases, tc)
	}
	flush()
	if len(r.Databases) > 0 {
		// One case per sync database: its repository statement.
		s := JUnitTestSuite{Name: "sync databases", Time: seconds(0), Properties: props}
		if !r.Started.IsZero() {
			s.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
		}
		for _, d := range r.Databases {
			tc := JUnitTestCase{Name: safetext.Line(d.Path), ClassName: "statement." + safetext.Line(d.Repo), Time: seconds(0)}
			p := &JUnitProblem{Message: safetext.Cut(safetext.Fold(d.Reason), MaxReasonLen), Type: "statement-" + d.Outcome, Text: safetext.Text(d.Reason)}
			switch d.Outcome {
			case DBRefused:
				tc.Failure = p
				s.Failures++
				doc.Failures++
			case DBUnavailable:
				tc.Error = p
				s.Errors++
				doc.Errors++
			}
			s.Tests++
			doc.Tests++
			s.Cases = append(s.Cases, tc)
		}
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	return doc
}

// WriteJUnit writes r as a JUnit XML document (see NewJUnit). Characters
// that XML cannot carry are replaced by U+FFFD.
func WriteJUnit(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(xml.Header)
	enc := xml.NewEncoder(bw)
	enc.Indent("", "  ")
	if err := enc.Encode(NewJUnit(r)); err != nil {
		return err
	}
	bw.WriteString("\n")
	return bw.Flush()
}

func junitName(r Report) string {
	return cmp.Or(r.Tool, "bintrans")
}

func junitProperties(r Report) []JUnitProperty {
	var p []JUnitProperty
	add := func(k, v string) {
		if v != "" {
			p = append(p, JUnitProperty{k, v})
		}
	}
	add("tool", r.Tool)
	add("version", r.Version)
	add("mode", r.Mode)
	if r.Log != nil {
		add("log.url", r.Log.URL)
		add("log.tree_size", strconv.FormatInt(r.Log.TreeSize, 10))
		add("log.root_hash", r.Log.RootHash)
	}
	return p
}

// junitClass is "repo.arch": dashboards group test cases by class name.
func junitClass(a verify.Artifact) string {
	return strings.ReplaceAll(location(a), "/", ".")
}

// junitDetails is the body of a <failure>: the reason and the evidence a
// reader needs to find the package and the entry.
func junitDetails(res verify.Result) string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	line("status", string(res.Status))
	line("reason", Reason(res))
	line("package", strings.TrimSpace(res.Artifact.Name+" "+res.Artifact.Version))
	sha := res.SHA256
	if sha == "" {
		sha = res.Artifact.SHA256
	}
	line("sha256", sha)
	line("key id", res.KeyID)
	if e := res.Entry; e != nil {
		line("log index", strconv.FormatInt(e.LogIndex, 10))
		line("uuid", e.UUID)
	}
	return b.String()
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
