package main

// # URL layout
//
//	GET  /                                       home: User Management for those who manage an org, else the feature pages
//	GET  /login, POST /login                     sign in (public)
//	GET  /forgot-password, POST                  Forgot Password: the token is printed on the terminal (public)
//	GET  /reset-password, POST                   the reset form: token and new password (public)
//	POST /logout                                 sign out
//	GET  /users/pending?org=&period=7d|30d|all   User Management, Pending Approvals tab (the pending count on the tab)
//	GET  /users/org?org=&after=                  Users by Organization tab
//	GET  /users/all?after=                       All Users tab (PlatformAdmins only)
//	POST /registrations/{id}/approve|reject      the Approve and Reject buttons
//	POST /orgs/{org}/members/{user}/role         Edit Role
//	POST /orgs/{org}/members/{user}/remove       Remove (after the confirmation modal on the Users by Organization tab)
//	GET  /permissions?org=&user=                 Permission Management: pick a user, seven checkboxes
//	POST /permissions/{org}/{user}               Save (SetCategories)
//	GET  /features/{category}?org=               a sample feature page per category, or "Insufficient permissions"
//	GET  /signup?org=, POST /signup              sign up into an org's Pending Approvals queue (public)
//	GET  /profile                                Profile: name, password, account deletion
//	POST /profile/name|password|delete           the Profile page's three forms
//	GET  /orgs, POST /orgs                       Organization Management (PlatformAdmins only): the list, Create
//	POST /orgs/{org}/rename|delete               Rename, and Delete (after the confirmation modal)
//	GET  /audit?org=&actor=&action=&outcome=&since=&until=&before=
//	                                             Audit Log: filters, newest first, a page at a time, the chain's status
//	GET  /audit/export?format=csv|jsonl&…        the same filters, as a CSV or JSON Lines download
//
// # Session and CSRF
//
// The session cookie holds the Service's own session token, nothing else:
// every request is identified by Service.Authenticate, so Logout, a
// password change or a deactivation end the console session at once. The
// cookie is HttpOnly, SameSite=Lax, Path=/, Secure when the request came
// over TLS (--tls-cert and --tls-key), and lives as long as the browser
// session (the Service bounds the session's lifetime itself). Behind a
// proxy that ends TLS the console sees plain HTTP and the cookie is not
// Secure: serve TLS to the proxy too.
//
// Every form carries a CSRF token in a hidden field: an HMAC-SHA256, under
// a key drawn at start, of what the request's cookie binds it to: the
// session token when signed in, else a random pre-session cookie (so that
// the login and reset forms are protected too, against login CSRF). It is
// compared in constant time; a POST without the right token gets 403 and
// changes nothing. A token is worth nothing without the victim's cookie,
// and signing in or out changes the binding, so old tokens stop working.
// net/http's CrossOriginProtection (Sec-Fetch-Site and Origin) is a second
// line in front of it.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	sessionCookie = "kiops_session"
	anonCookie    = "kiops_anon"
	csrfField     = "csrf"
	// maxForm bounds a form body: the console's forms are a few fields.
	maxForm = 64 << 10
)

// console is the web console's http.Handler.
type console struct {
	svc     *iam.Service
	log     *slog.Logger
	pages   map[string]*template.Template
	csrfKey []byte
	handler http.Handler
}

// newConsole parses the templates and wires the routes.
func newConsole(svc *iam.Service, log *slog.Logger) (*console, error) {
	c := &console{svc: svc, log: log, pages: map[string]*template.Template{}, csrfKey: make([]byte, 32)}
	rand.Read(c.csrfKey) // never fails (crypto/rand documents it)
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		name = strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", c.authed(c.home))
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/users/pending", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /login", c.public(c.loginPage))
	mux.HandleFunc("POST /login", c.public(c.login))
	mux.HandleFunc("GET /forgot-password", c.public(c.forgotPage))
	mux.HandleFunc("POST /forgot-password", c.public(c.forgot))
	mux.HandleFunc("GET /reset-password", c.public(c.resetPage))
	mux.HandleFunc("POST /reset-password", c.public(c.reset))
	mux.HandleFunc("POST /logout", c.authed(c.logout))
	mux.HandleFunc("GET /users/pending", c.authed(c.pendingTab))
	mux.HandleFunc("GET /users/org", c.authed(c.orgTab))
	mux.HandleFunc("GET /users/all", c.authed(c.allTab))
	mux.HandleFunc("POST /registrations/{id}/{decision}", c.authed(c.decide))
	mux.HandleFunc("POST /orgs/{org}/members/{user}/role", c.authed(c.changeRole))
	mux.HandleFunc("POST /orgs/{org}/members/{user}/remove", c.authed(c.remove))
	mux.HandleFunc("GET /permissions", c.authed(c.permissionsPage))
	mux.HandleFunc("POST /permissions/{org}/{user}", c.authed(c.savePermissions))
	mux.HandleFunc("GET /features/{category}", c.authed(c.featurePage))
	mux.HandleFunc("GET /signup", c.public(c.signupPage))
	mux.HandleFunc("POST /signup", c.public(c.signup))
	mux.HandleFunc("GET /profile", c.authed(c.profilePage))
	mux.HandleFunc("POST /profile/name", c.authed(c.changeName))
	mux.HandleFunc("POST /profile/password", c.authed(c.changePassword))
	mux.HandleFunc("POST /profile/delete", c.authed(c.deleteAccount))
	mux.HandleFunc("GET /orgs", c.authed(c.orgsPage))
	mux.HandleFunc("POST /orgs", c.authed(c.createOrg))
	mux.HandleFunc("POST /orgs/{org}/rename", c.authed(c.renameOrg))
	mux.HandleFunc("POST /orgs/{org}/delete", c.authed(c.deleteOrg))
	mux.HandleFunc("GET /audit", c.authed(c.auditPage))
	mux.HandleFunc("GET /audit/export", c.authed(c.auditExport))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found", "There is no such page.")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusForbidden, "Request refused", "The request came from another site.")
	}))
	c.handler = cop.Handler(mux)
	return c, nil
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The console needs no script, frame or foreign resource: forbid them
	// all, so an injection that escaped the templates could do nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.handler.ServeHTTP(w, r)
}

// session is the signed-in person of a request.
type session struct {
	token string
	Me    iam.Profile
	// Manages lists the orgs the person manages: every org for a
	// PlatformAdmin, the orgs where they are Manager otherwise. It only
	// shapes the menus; the Service decides every call.
	Manages []identity.Org
	// Orgs lists the orgs where feature pages can open: every org for a
	// PlatformAdmin, the person's own orgs otherwise.
	Orgs []identity.Org
}

// ctx is the request's context with the client's address, which the
// Service uses for login throttling and the audit log.
func ctx(r *http.Request) context.Context {
	return iam.WithClientAddr(r.Context(), iam.ClientIP(r))
}

// public wraps a page anyone may open: it makes sure a pre-session cookie
// exists (the CSRF binding before sign-in) and checks the CSRF token of a
// POST.
func (c *console) public(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.binding(r) == "" {
			b := make([]byte, 32)
			rand.Read(b)
			v := base64.RawURLEncoding.EncodeToString(b)
			setCookie(w, r, anonCookie, v)
			r.AddCookie(&http.Cookie{Name: anonCookie, Value: v}) // so this response's form binds to it
		}
		if r.Method == http.MethodPost && !c.csrfOK(w, r) {
			c.errorPage(w, r, nil, http.StatusForbidden, "Request refused", "The form was not sent by this console (its security token is missing or out of date). Reload the page and try again.")
			return
		}
		h(w, r)
	}
}

// authed wraps a page behind sign-in: the session cookie must name a live
// Service session. A POST must carry the session's CSRF token.
func (c *console) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !c.csrfOK(w, r) {
			// Refused before the session is even looked at: a forged post
			// learns nothing and changes nothing.
			c.errorPage(w, r, nil, http.StatusForbidden, "Request refused", "The form was not sent by this console (its security token is missing or out of date). Reload the page and try again.")
			return
		}
		user, err := c.svc.Authenticate(ctx(r), ck.Value)
		if err != nil {
			if errors.Is(err, iam.ErrUnauthenticated) {
				clearCookie(w, r, sessionCookie)
				http.Redirect(w, r, "/login?expired=1", http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, err)
			return
		}
		s := &session{token: ck.Value}
		if s.Me, err = c.svc.Profile(ctx(r), user); err != nil {
			c.fail(w, r, nil, err)
			return
		}
		// One listing serves both menus: every org for a PlatformAdmin,
		// the person's own orgs otherwise.
		orgs, err := c.svc.Orgs(ctx(r), user)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		s.Orgs = orgs
		for _, o := range orgs {
			if s.Me.PlatformAdmin || s.Me.Memberships[o.ID].Role == authz.Manager {
				s.Manages = append(s.Manages, o)
			}
		}
		h(w, r, s)
	}
}

// binding is what the request's CSRF token is bound to: the session
// token when there is one, else the pre-session cookie.
func (c *console) binding(r *http.Request) string {
	for _, name := range []string{sessionCookie, anonCookie} {
		if ck, err := r.Cookie(name); err == nil && ck.Value != "" {
			return ck.Value
		}
	}
	return ""
}

// csrfToken is the token the forms of a page for r carry.
func (c *console) csrfToken(r *http.Request) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("kiops console csrf\x00"))
	m.Write([]byte(c.binding(r)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK reads the form (bounded) and compares its CSRF field with the
// expected token in constant time.
func (c *console) csrfOK(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || c.binding(r) == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(c.csrfToken(r)))
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string // the menu entry to mark current
	S      *session
	CSRF   string
	Notice string // a fixed message chosen by the handler, never request text
	Data   any
}

// render executes page into a buffer first, so that a template error
// becomes an error page instead of half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.CSRF = c.csrfToken(r)
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, "layout.html", v); err != nil {
		c.log.Error("console: rendering "+page, "err", err)
		if page != "error" {
			c.errorPage(w, r, v.S, http.StatusInternalServerError, "Something went wrong", "The page could not be shown. Try again later.")
		} else {
			http.Error(w, "Something went wrong", http.StatusInternalServerError)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

type errorData struct {
	Status        int
	Title, Detail string
}

func (c *console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, title, detail string) {
	c.render(w, r, status, "error", view{Title: title, S: s, Data: errorData{status, title, detail}})
}

// fail shows err as a page: the module's own wording for people
// (authz.ProblemFor), never internal error text. A session that ended
// meanwhile goes back to the login page; an "Insufficient permissions"
// answer gets its own page.
func (c *console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if errors.Is(err, iam.ErrUnauthenticated) {
		clearCookie(w, r, sessionCookie)
		http.Redirect(w, r, "/login?expired=1", http.StatusSeeOther)
		return
	}
	var ipe *authz.InsufficientPermissionsError
	if errors.As(err, &ipe) {
		c.insufficient(w, r, s, "", "", ipe)
		return
	}
	p := authz.ProblemFor(err)
	if p.Status >= 500 {
		c.log.Error("console: request failed", "path", r.URL.Path, "err", err)
		c.errorPage(w, r, s, p.Status, "Something went wrong", "The request could not be completed. Try again later.")
		return
	}
	detail := p.Detail
	if detail == "" {
		detail = defaultDetail[p.Status]
	}
	c.errorPage(w, r, s, p.Status, p.Title, detail)
}

var defaultDetail = map[int]string{
	http.StatusForbidden: "You may not do this. Ask a Manager or a PlatformAdmin.",
	http.StatusNotFound:  "There is no such page, organization or user, or it is not yours to see.",
	http.StatusConflict:  "This was changed meanwhile. Reload the page and try again.",
}
