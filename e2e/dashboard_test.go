package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var dashboardLine = regexp.MustCompile(`^dashboard on http://.*:(\d+)/$`)

// TestDashboardNeedsToken: `zerotask broker --http` on a non-loopback address with
// --http-token answers 401 on every route but the login form, without the token; the form
// sets a cookie that opens them, and the buttons also need the page's request header.
func TestDashboardNeedsToken(t *testing.T) {
	tok := t.TempDir() + "/token"
	if err := os.WriteFile(tok, []byte("dash-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bd, _, _ := startBinaryBroker(t, "--http", "0.0.0.0:0", "--http-token", tok)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := bd.expect(ctx, dashboardLine)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + m[1]
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, cookie, body string, hdr map[string]string) *http.Response {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	routes := []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/index.html"}, {"GET", "/app.js"}, {"GET", "/app.css"},
		{"GET", "/metrics"}, {"GET", "/api/events"}, {"GET", "/api/task?id=x"}, {"GET", "/no-such-page"},
		{"POST", "/api/revoke"}, {"POST", "/api/pause"}, {"POST", "/api/resume"}, {"POST", "/api/purge"},
	}
	for _, r := range routes {
		if resp := do(r.method, r.path, "", "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without the token: %s, want 401", r.method, r.path, resp.Status)
		}
	}
	if resp := do("GET", "/login", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /login: %s, want 200", resp.Status)
	}
	if resp := do("POST", "/login", "", "token=wrong", nil); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("POST /login with a wrong token: %s, cookies %v; want 401 and none", resp.Status, resp.Cookies())
	}
	resp := do("POST", "/login", "", "token="+url.QueryEscape("dash-s3cret"), nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("POST /login with the token: %s, cookies %v; want 303 and a cookie", resp.Status, resp.Cookies())
	}
	c := resp.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, "dash-s3cret") {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, and not the token itself", c)
	}
	cookie := c.Name + "=" + c.Value
	for _, path := range []string{"/", "/app.js", "/metrics"} {
		if resp := do("GET", path, cookie, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the cookie: %s, want 200", path, resp.Status)
		}
	}
	if resp := do("GET", "/", "", "", map[string]string{"Authorization": "Bearer dash-s3cret"}); resp.StatusCode != http.StatusOK {
		t.Errorf("GET / with the bearer token: %s, want 200", resp.Status)
	}
	// A button without the page's header (a form posted from another site) is refused.
	if resp := do("POST", "/api/revoke", cookie, "id=x", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /api/revoke without %s: %s, want 403", "X-Zerotask-Request", resp.Status)
	}
	if resp := do("POST", "/api/revoke", cookie, "id=nosuch-1", map[string]string{"X-Zerotask-Request": "1"}); resp.StatusCode != http.StatusOK {
		t.Errorf("POST /api/revoke with cookie and header: %s, want 200", resp.Status)
	}
}
