package ci

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"

	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// Decoding types written independently of the writer's, so that a wrong
// tag in junit.go cannot hide behind the same wrong tag here.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name     string  `xml:"name,attr"`
	Tests    int     `xml:"tests,attr"`
	Failures int     `xml:"failures,attr"`
	Errors   int     `xml:"errors,attr"`
	Cases    []xCase `xml:"testcase"`
}

type xCase struct {
	Name      string `xml:"name,attr"`
	ClassName string `xml:"classname,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Body    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
	} `xml:"error"`
}

// TestJUnitParsesBack: the document is well-formed XML (strict token scan),
// and decoding it gives one suite per repo/arch and one case per package
// whose failure type and message are the package's status and reason.
func TestJUnitParsesBack(t *testing.T) {
	r := fixtureReport()
	r.Databases = nil // packages only: TestDatabasesInReports
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}

	var doc xSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != len(r.Results) || doc.Failures+doc.Errors != r.Failed() || doc.Errors != 1 {
		t.Errorf("testsuites tests=%d failures=%d errors=%d, want %d, %d failed of which 1 error",
			doc.Tests, doc.Failures, doc.Errors, len(r.Results), r.Failed())
	}

	want := map[string]verify.Result{} // by sanitized file name
	for _, res := range r.Results {
		want[safetext.Line(res.Artifact.Filename)] = res
	}
	seenSuites := map[string]bool{}
	cases := 0
	for _, s := range doc.Suites {
		if seenSuites[s.Name] {
			t.Errorf("suite %s appears twice", s.Name)
		}
		seenSuites[s.Name] = true
		if s.Tests != len(s.Cases) {
			t.Errorf("suite %s: tests=%d but %d cases", s.Name, s.Tests, len(s.Cases))
		}
		fails, errs := 0, 0
		for _, c := range s.Cases {
			cases++
			res, ok := want[c.Name]
			if !ok {
				t.Errorf("unexpected test case %q", c.Name)
				continue
			}
			if loc := location(res.Artifact); loc != s.Name {
				t.Errorf("%s in suite %s, want %s", c.Name, s.Name, loc)
			}
			switch {
			case res.OK():
				if c.Failure != nil || c.Error != nil {
					t.Errorf("%s: ok package has a failure", c.Name)
				}
			case res.Status == verify.StatusUnavailable:
				errs++
				if c.Error == nil || c.Error.Type != string(res.Status) || c.Error.Message != Reason(res) {
					t.Errorf("%s: error element %+v, want type %s", c.Name, c.Error, res.Status)
				}
			default:
				fails++
				if c.Failure == nil || c.Failure.Type != string(res.Status) || c.Failure.Message != Reason(res) {
					t.Errorf("%s: failure element %+v, want type %s message %q", c.Name, c.Failure, res.Status, Reason(res))
				}
			}
		}
		if s.Failures != fails || s.Errors != errs {
			t.Errorf("suite %s: failures=%d errors=%d, counted %d and %d", s.Name, s.Failures, s.Errors, fails, errs)
		}
	}
	if cases != len(r.Results) {
		t.Errorf("%d test cases, want %d", cases, len(r.Results))
	}
}

func TestJUnitEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, Report{}); err != nil {
		t.Fatal(err)
	}
	var doc xSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("empty report is not valid XML: %v\n%s", err, buf.Bytes())
	}
	if len(doc.Suites) != 0 || doc.Tests != 0 {
		t.Errorf("empty report has %d suites, %d tests", len(doc.Suites), doc.Tests)
	}
}
