package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kiops/iam/authz"
)

// badInput: malformed JSON, unknown fields, oversize bodies, wrong
// content types and bad query parameters each get their 4xx problem and
// change nothing.
func (w *world) badInput(t *testing.T) {
	huge := `{"name":"` + strings.Repeat("a", DefaultMaxBodyBytes+10) + `"}`
	joonRole := w.path("/v1/orgs/%s/members/%s/role", w.seoul, w.id["joon"])
	orgs := func(body any, contentType string) request {
		return request{method: "POST", path: "/v1/orgs", token: w.tok[admin], body: body, contentType: contentType}
	}
	cases := []struct {
		name   string
		q      request
		want   int
		detail string // a part of the problem's detail, if set
	}{
		{"malformed JSON", orgs(`{"name":`, ""), 400, "not valid JSON"},
		{"not JSON", orgs(`name=Temp`, ""), 400, "not valid JSON"},
		{"an array", orgs(`[{"name":"Temp"}]`, ""), 400, "must be a JSON object"},
		{"a string", orgs(`"Temp"`, ""), 400, "must be a JSON object"},
		{"null", orgs(`null`, ""), 400, "must be a JSON object"},
		{"an empty body", orgs(``, ""), 400, "empty"},
		{"white space", orgs("  \n ", ""), 400, "empty"},
		{"two objects", orgs(`{"name":"A"}{"name":"B"}`, ""), 400, "nothing after it"},
		{"trailing garbage", orgs(`{"name":"A"} x`, ""), 400, "nothing after it"},
		{"an unclosed object", orgs(`{"name":"A"`, ""), 400, "not valid JSON"},
		{"invalid UTF-8", orgs("{\"name\":\"\xff\"}", ""), 400, "UTF-8"},
		{"an unknown field", orgs(`{"name":"Temp","owner":"me"}`, ""), 422, `unknown field "owner"`},
		{"a field in another case", orgs(`{"Name":"Temp"}`, ""), 422, `unknown field "Name"`},
		{"a repeated field", orgs(`{"name":"A","name":"B"}`, ""), 422, `"name" appears more than once`},
		{"a number for a string", orgs(`{"name":7}`, ""), 422, "invalid name: want a string"},
		{"an object for a string", orgs(`{"name":{"x":1}}`, ""), 422, "invalid name"},
		{"a body over 64 KiB", orgs(huge, ""), 413, "at most 65536 bytes"},
		{"a body over 64 KiB of unknown length", orgs(io.MultiReader(strings.NewReader(huge)), ""), 413, "at most 65536 bytes"},
		{"no Content-Type", orgs(`{"name":"Temp"}`, "none"), 415, "application/json"},
		{"text/plain", orgs(`{"name":"Temp"}`, "text/plain"), 415, "application/json"},
		{"a form", orgs(`name=Temp`, "application/x-www-form-urlencoded"), 415, ""},
		{"JSON in Latin-1", orgs(`{"name":"Temp"}`, "application/json; charset=latin1"), 415, ""},
		{"a JSON variant", orgs(`{"name":"Temp"}`, "application/merge-patch+json"), 415, ""},
		{"a malformed Content-Type", orgs(`{"name":"Temp"}`, "application/json; ="), 415, ""},
		// Fields a client might try to slip in are refused, not ignored.
		{"sign-up with a role", request{method: "POST", path: "/v1/signup", body: map[string]string{
			"email": "eve@example.com", "name": "Eve", "password": password, "org_id": w.seoul, "role": "platform_admin"}}, 422, `unknown field "role"`},
		{"login with extras", request{method: "POST", path: "/v1/login", body: map[string]string{"email": adminEmail, "password": password, "mfa": "x"}}, 422, `unknown field "mfa"`},
		{"a role with an org", request{method: "PUT", path: joonRole, token: w.tok[mgr], body: map[string]string{"role": "manager", "org_id": w.busan}}, 422, `unknown field "org_id"`},
		{"a categories array of numbers", request{method: "PUT", path: w.path("/v1/orgs/%s/members/%s/categories", w.seoul, w.id["joon"]),
			token: w.tok[mgr], body: `{"categories":[1,2]}`}, 422, "invalid categories"},
		// Query parameters.
		{"a bad period", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/registrations?period=1y", token: w.tok[mgr]}, 422, "invalid period"},
		{"a period given twice", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/registrations?period=7d&period=30d", token: w.tok[mgr]}, 422, "more than once"},
		{"a bad status", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/registrations?status=done", token: w.tok[mgr]}, 422, "invalid status"},
		{"an unknown parameter", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/registrations?perod=7d", token: w.tok[mgr]}, 422, `unknown parameter "perod"`},
		{"a malformed query", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?limit=%zz", token: w.tok[mgr]}, 422, "malformed"},
		{"limit 0", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?limit=0", token: w.tok[mgr]}, 422, "invalid limit"},
		{"limit 1001", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?limit=1001", token: w.tok[mgr]}, 422, "invalid limit"},
		{"a cursor that is no cursor", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?before=-1", token: w.tok[mgr]}, 422, "invalid before"},
		{"since yesterday", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?since=yesterday", token: w.tok[mgr]}, 422, "invalid since"},
		{"until before since", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", token: w.tok[mgr]}, 422, "until must be after since"},
		{"an actor that is a name", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?actor=mina", token: w.tok[mgr]}, 422, "invalid actor"},
		{"an unknown action", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?action=drop", token: w.tok[mgr]}, 422, "invalid action"},
		{"an unknown outcome", request{method: "GET", path: "/v1/orgs/" + w.seoul + "/audit?outcome=maybe", token: w.tok[mgr]}, 422, "invalid outcome"},
		// Unknown methods and paths.
		{"an unknown path", request{method: "GET", path: "/v1/nothing", token: w.tok[admin]}, 404, ""},
		{"an unknown method", request{method: "PUT", path: "/v1/orgs", token: w.tok[admin], body: `{}`}, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r resp
			w.unchanged(t, func() { r = w.send(t, c.q) })
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			var p authz.Problem
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, c.detail)
			}
			if strings.Contains(p.Detail, "aaaaaaaaaaaaaaaa") || strings.Contains(p.Detail, password) {
				t.Errorf("detail repeats the input: %q", p.Detail)
			}
		})
	}
	if r := w.send(t, request{method: "PUT", path: "/v1/orgs", token: w.tok[admin], body: `{}`}); !strings.Contains(r.header.Get("Allow"), "POST") {
		t.Errorf("405 with Allow %q", r.header.Get("Allow"))
	}
	// What the refusals above refused is accepted when well formed.
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		r := w.send(t, request{method: "POST", path: "/v1/orgs", token: w.tok[admin], body: `{"name":"Well formed"}`, contentType: ct})
		if r.status != 201 {
			t.Errorf("Content-Type %q: %d %s", ct, r.status, r.body)
			continue
		}
		w.do(t, 204, "DELETE", "/v1/orgs/"+r.str(t, "id"), w.tok[admin], nil)
	}
}

// oddPaths: path values that cannot be ids (NUL, wildcards, dots,
// slashes, very long, Unicode, case and space variants of real ids)
// answer 404 and change nothing, on every route that takes one.
func (w *world) oddPaths(t *testing.T) {
	odd := []struct {
		name, value string
		slots       string // the slots it is tried in: "" for all
	}{
		{"NUL", "%00", ""},
		{"star", "*", ""},
		{"escaped star", "%2A", ""},
		{"dot dot", "..", ""},
		{"escaped dot dot", "%2e%2e", ""},
		{"dot", ".", ""},
		{"empty", "", ""},
		{"escaped slash", "a%2Fb", ""},
		{"percent", "%25", ""},
		{"very long", strings.Repeat("a", 4000), ""},
		{"Unicode", "%EC%84%9C%EC%9A%B8", ""},
		{"upper case id", strings.ToUpper(w.seoul), ""},
		{"id and a space", w.seoul + "%20", ""},
		{"id and a newline", w.seoul + "%0A", ""},
		{"id and NUL", w.seoul + "%00", ""},
		{"a wildcard id", "org_*", ""},
		{"two ids", w.seoul + "," + w.busan, ""},
		{"a user id for an org", w.id["joon"], "org"},
		{"an org id for a user", w.seoul, "user"},
		{"an org id for a request", w.seoul, "request"},
	}
	routes := []struct{ slot, method, format string }{
		{"org", "GET", "/v1/orgs/%s"},
		{"org", "DELETE", "/v1/orgs/%s"},
		{"org", "GET", "/v1/orgs/%s/members"},
		{"org", "GET", "/v1/orgs/%s/registrations"},
		{"org", "GET", "/v1/orgs/%s/audit"},
		{"org", "GET", "/v1/orgs/%s/runtime"},
		{"org", "PUT", "/v1/orgs/%s/members/" + w.id["joon"] + "/role"},
		{"user", "PUT", "/v1/orgs/" + w.seoul + "/members/%s/categories"},
		{"user", "DELETE", "/v1/orgs/" + w.seoul + "/members/%s"},
		{"user", "POST", "/v1/orgs/" + w.seoul + "/members/%s/password-reset"},
		{"user", "DELETE", "/v1/users/%s"},
		{"user", "POST", "/v1/users/%s/deactivate"},
		{"request", "POST", "/v1/registrations/%s/approve"},
		{"device", "DELETE", "/v1/orgs/" + w.seoul + "/devices/%s"},
	}
	bodies := map[string]any{"/role": map[string]string{"role": "manager"}, "/categories": map[string]any{"categories": []string{"vpn"}}}
	for _, o := range odd {
		t.Run(o.name, func(t *testing.T) {
			w.unchanged(t, func() {
				for _, rt := range routes {
					if o.slots != "" && o.slots != rt.slot {
						continue
					}
					path := w.path(rt.format, o.value)
					var body any
					for suffix, b := range bodies {
						if strings.HasSuffix(rt.format, suffix) {
							body = b
						}
					}
					r := w.send(t, request{method: rt.method, path: path, token: w.tok[admin], body: body})
					if r.status != http.StatusNotFound {
						t.Errorf("%s %.80s: %d, want 404: %s", rt.method, path, r.status, r.body)
					}
				}
			})
		})
	}
}
