package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
)

// LoginPath is the one route Protect lets through without the token: a form that takes the
// token and sets the session cookie.
const LoginPath = "/login"

// CookieName is the cookie the login form sets.
const CookieName = "zerotask_session"

// maxTokenForm bounds the body of a login.
const maxTokenForm = 4096

// Protect guards next with a token: a request passes when it carries the token as a bearer
// header (`Authorization: Bearer TOKEN`, for scrapers and scripts) or the cookie that a POST of
// the token to LoginPath sets (for browsers). Everything else but LoginPath is answered 401.
// Comparisons take constant time, lengths included (both sides are hashed first). The cookie
// holds a keyed hash of the token, not the token, and is HttpOnly and SameSite=Strict. A nil or
// empty token lets everything through (and LoginPath redirects to /).
func Protect(token []byte, next http.Handler) http.Handler {
	if len(token) == 0 {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == LoginPath {
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	want := sha256.Sum256(token)
	session := sessionValue(token)
	wantSession := sha256.Sum256([]byte(session))
	ok := func(r *http.Request) bool {
		if got, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
			sum := sha256.Sum256([]byte(got))
			return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		}
		if c, err := r.Cookie(CookieName); err == nil {
			sum := sha256.Sum256([]byte(c.Value))
			return subtle.ConstantTimeCompare(sum[:], wantSession[:]) == 1
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == LoginPath {
			login(w, r, want, session)
			return
		}
		if !ok(r) {
			unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionValue is the cookie's value: an HMAC of a fixed label under the token.
func sessionValue(token []byte) string {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("zerotask dashboard session"))
	return hex.EncodeToString(m.Sum(nil))
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="zerotask"`)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		// A browser gets the login form with its 401.
		writeLogin(w, http.StatusUnauthorized, "")
		return
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// login shows the form (GET) or checks a token and sets the cookie (POST).
func login(w http.ResponseWriter, r *http.Request, want [sha256.Size]byte, session string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeLogin(w, http.StatusOK, "")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		sum := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			writeLogin(w, http.StatusUnauthorized, "That token is not the right one.")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    session,
			Path:     "/",
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ZeroTask: sign in</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:15px system-ui,sans-serif;background:#f4f5f7;color:#1d2330;display:flex;justify-content:center;padding-top:12vh}
form{background:#fff;padding:24px 28px;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:320px}
h1{font-size:18px;margin:0 0 16px}input{width:100%;box-sizing:border-box;padding:8px;margin:6px 0 14px;font:inherit}
button{padding:8px 16px;font:inherit}.err{color:#b3261e}</style></head>
<body><form method="post" action="/login"><h1>ZeroTask dashboard</h1>
{{if .}}<p class="err">{{.}}</p>{{end}}
<label for="token">Token (the content of the broker's --http-token file)</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<button id="signin" type="submit">Sign in</button></form></body></html>
`))

func writeLogin(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, msg)
}
