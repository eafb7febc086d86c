package ci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// schemaValidator checks a JSON document against the subset of JSON Schema
// (draft 2020-12) that docs/report-schema.json uses: type, const, enum,
// required, properties, additionalProperties (false or a schema), items,
// minimum, maxLength, pattern and local $ref. Any other keyword in the schema
// is an error, so the schema cannot silently grow beyond what is checked.
type schemaValidator struct {
	root map[string]any
}

var knownKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$ref": true, "title": true, "description": true, "format": true,
	"type": true, "const": true, "enum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "minimum": true, "maxLength": true, "pattern": true,
}

func (v *schemaValidator) validate(schema map[string]any, doc any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, path+": "+fmt.Sprintf(format, args...))
	}
	for k := range schema {
		if !knownKeywords[k] {
			fail("schema keyword %q not supported by the test validator", k)
		}
	}
	if ref, ok := schema["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		defs, _ := v.root["$defs"].(map[string]any)
		sub, found := defs[name].(map[string]any)
		if !ok || !found {
			fail("unresolvable $ref %q", ref)
			return errs
		}
		errs = append(errs, v.validate(sub, doc, path)...)
	}
	if t, ok := schema["type"].(string); ok && !hasType(doc, t) {
		fail("type %T, want %s", doc, t)
		return errs
	}
	if c, ok := schema["const"]; ok && !reflect.DeepEqual(c, doc) {
		fail("%v, want const %v", doc, c)
	}
	if e, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, doc) }) {
		fail("%v not in enum %v", doc, e)
	}
	if m, ok := schema["minimum"].(float64); ok {
		if n, isNum := doc.(float64); isNum && n < m {
			fail("%v < minimum %v", n, m)
		}
	}
	if s, isStr := doc.(string); isStr {
		if m, ok := schema["maxLength"].(float64); ok && utf8.RuneCountInString(s) > int(m) {
			fail("length %d > maxLength %v", utf8.RuneCountInString(s), m)
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			fail("%q does not match %s", s, p)
		}
	}
	if obj, isObj := doc.(map[string]any); isObj {
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("missing required %q", r)
				}
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, val := range obj {
			if sub, ok := props[k].(map[string]any); ok {
				errs = append(errs, v.validate(sub, val, path+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("unexpected property %q", k)
				}
			case map[string]any:
				errs = append(errs, v.validate(ap, val, path+"."+k)...)
			}
		}
	}
	if arr, isArr := doc.([]any); isArr {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, v.validate(items, x, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func hasType(doc any, t string) bool {
	switch t {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "integer":
		n, ok := doc.(float64)
		return ok && n == math.Trunc(n)
	case "number":
		_, ok := doc.(float64)
		return ok
	case "null":
		return doc == nil
	}
	return false
}

func loadSchema(t *testing.T) *schemaValidator {
	t.Helper()
	b, err := os.ReadFile("../docs/report-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("report-schema.json: %v", err)
	}
	return &schemaValidator{root: root}
}

func validateJSON(t *testing.T, v *schemaValidator, b []byte) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	return v.validate(v.root, doc, "$")
}

// TestJSONMatchesSchema validates the golden-producing reports against
// docs/report-schema.json.
func TestJSONMatchesSchema(t *testing.T) {
	v := loadSchema(t)
	for name, r := range map[string]Report{"mixed": fixtureReport(), "empty": {Tool: "bintrans", Version: "test", Mode: ModeOffline}} {
		var buf bytes.Buffer
		if err := WriteJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
		if errs := validateJSON(t, v, buf.Bytes()); len(errs) > 0 {
			t.Errorf("%s report does not match the schema:\n%s", name, strings.Join(errs, "\n"))
		}
	}
}

// TestSchemaRejects makes sure the validator and the schema can fail: each
// mutation of a valid report must be reported.
func TestSchemaRejects(t *testing.T) {
	v := loadSchema(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	mutations := map[string]func(doc map[string]any){
		"schema_version 1":   func(d map[string]any) { d["schema_version"] = 1.0 },
		"database outcome":   func(d map[string]any) { d["databases"].([]any)[0].(map[string]any)["outcome"] = "fine" },
		"no databases":       func(d map[string]any) { delete(d, "databases") },
		"unknown top field":  func(d map[string]any) { d["extra"] = true },
		"missing packages":   func(d map[string]any) { delete(d, "packages") },
		"bad mode":           func(d map[string]any) { d["mode"] = "sometimes" },
		"unknown status":     func(d map[string]any) { pkg(d, 0)["status"] = "fine" },
		"multi-line reason":  func(d map[string]any) { pkg(d, 1)["reason"] = "a\nb" },
		"upper-case sha256":  func(d map[string]any) { pkg(d, 0)["sha256"] = strings.Repeat("A", 64) },
		"negative log index": func(d map[string]any) { pkg(d, 0)["log_index"] = -1.0 },
		"fractional count":   func(d map[string]any) { d["summary"].(map[string]any)["total"] = 1.5 },
		"missing by_status key": func(d map[string]any) {
			delete(d["summary"].(map[string]any)["by_status"].(map[string]any), "wrong-key")
		},
		"rebuild without lists": func(d map[string]any) {
			for i := range d["packages"].([]any) {
				if rb, ok := pkg(d, i)["rebuild"].(map[string]any); ok {
					delete(rb, "confirmed")
					return
				}
			}
			panic("fixture has no rebuild verdict")
		},
	}
	for name, mutate := range mutations {
		var doc map[string]any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		mutate(doc)
		b, _ := json.Marshal(doc)
		if errs := validateJSON(t, v, b); len(errs) == 0 {
			t.Errorf("%s: schema accepted an invalid report", name)
		}
	}
}

func pkg(d map[string]any, i int) map[string]any {
	return d["packages"].([]any)[i].(map[string]any)
}

// TestSchemaStatusesMatch keeps the schema's status enum and by_status keys
// equal to ci.Statuses (which TestStatusesCoverEngine ties to the engine).
func TestSchemaStatusesMatch(t *testing.T) {
	v := loadSchema(t)
	defs := v.root["$defs"].(map[string]any)
	enum := defs["status"].(map[string]any)["enum"].([]any)
	byStatus := v.root["properties"].(map[string]any)["summary"].(map[string]any)["properties"].(map[string]any)["by_status"].(map[string]any)["required"].([]any)
	var want []any
	for _, s := range Statuses {
		want = append(want, string(s))
	}
	if !reflect.DeepEqual(enum, want) {
		t.Errorf("schema status enum = %v, want ci.Statuses %v", enum, want)
	}
	if !reflect.DeepEqual(byStatus, want) {
		t.Errorf("schema by_status required = %v, want ci.Statuses %v", byStatus, want)
	}
}
